"""Attribute-aware search: fused ranking vs similarity alone, the offline query parse, verification's request rate.

1. Ranking: the test kit's 16 held-out people (colour pairs never trained on; each colour worn by two of them),
   each in ``--views`` scene images, indexed from their true boxes with the kit's fine-tuned tiny matcher;
   zero-shot attributes from the stored embeddings (``attribute_indexed_persons``), merged per person. 50
   attribute queries built from the people's known clothing (top and bottom colours, bag and its colour, hat);
   a result is relevant when its person has every stated attribute. Rank-1 and precision@5 of similarity alone
   vs the fused ranking (constraints from the offline parse; weights 0.6 = default and 0.3), side by side, with
   the zero-shot attributes weighed by the reliability measured on the kit's validation people (the default) and
   without it; the zero-shot attributes' accuracy per attribute; and the same fused queries with true attributes
   (the fake Gemini answering each crop's truth through ``attribute_indexed_persons``), what a good attribute
   model gives.
2. Parse: one plain query per value of every constrainable attribute (testing/attribute_queries.py), parsed
   offline; the share parsed right, and the table.
3. Verification against the fake Gemini server enforcing ``--rpm`` per sliding minute (the client told the
   same cap): achieved requests in the first minute / limit, 429s, and every candidate verified or an error.

    .venv/bin/python bench/attribute_search.py [--views 5] [--rpm 60] [--matcher FOLDER]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402


def _queries(specs, count, seed=0):
    """``[(query text, {attribute: value})]`` about the people's clothing; the dict is the truth to match."""
    import numpy as np

    lower = lambda s: "skirt" if s.skirt else ("trousers" if s.long_lower else "shorts")  # noqa: E731
    out = []
    for s in specs:
        out.append((f"a person in a {s.upper_color} top and {s.lower_color} {lower(s)}",
                    {"upper_color": s.upper_color, "lower_color": s.lower_color}))
        if s.bag != "none":
            out.append((f"someone in a {s.upper_color} top carrying a {s.bag_color} {s.bag}",
                        {"upper_color": s.upper_color, "bag": s.bag, "bag_color": s.bag_color}))
            out.append((f"{s.lower_color} {lower(s)} and a {s.bag}", {"lower_color": s.lower_color, "bag": s.bag}))
        if s.hat:
            out.append((f"a {s.upper_color} top and a hat", {"upper_color": s.upper_color, "hat": True}))
        else:
            out.append((f"{s.lower_color} {lower(s)}, no hat", {"lower_color": s.lower_color, "hat": False}))
    order = np.random.default_rng(seed).permutation(len(out))
    return [out[i] for i in order[:count]]


#: Attribute weights of the fused ranking that are measured (the default first).
WEIGHTS = (0.6, 0.3)
#: Attributes whose zero-shot accuracy is reported.
ATTRIBUTES_CHECKED = ("upper_colors", "lower_colors", "lower_type", "sleeve_length", "hat", "backpack", "handbag",
                      "shoulder_bag", "gender")


def _relevant(spec, truth):
    return all(getattr(spec, name) == value for name, value in truth.items())


def _truth(spec):
    """The schema values a perfect attribute model gives ``spec`` (what the fake Gemini answers)."""
    from person_finder.testing.fake_gemini import spec_answer

    return spec_answer(spec)


def _evaluate(dataset, queries, spec_of, **kwargs):
    """Rank-1 and precision@5 over ``queries`` (``kwargs``: fusion arguments; constraints from the offline parse)."""
    from person_finder.core.attributes.constraints import parse_offline
    from person_finder.core.search import rank_persons

    rank1, p5 = 0, 0.0
    for text, truth in queries:
        extra = {"constraints": parse_offline(text), **kwargs} if kwargs else {}
        hits = [_relevant(spec_of[r["label_id"]], truth) for r in rank_persons(dataset, text, k=5, **extra)]
        rank1 += int(bool(hits) and hits[0])
        p5 += sum(hits) / 5
    return {"rank1": rank1 / len(queries), "p5": p5 / len(queries)}


def _fused(dataset, queries, spec_of):
    """``{weight: Rank-1 and precision@5}`` of the fused ranking with the persons' current attributes."""
    return {w: _evaluate(dataset, queries, spec_of, attribute_weight=w) for w in WEIGHTS}


def _attribute_accuracy(dataset, spec_of, fields=ATTRIBUTES_CHECKED):
    """Per attribute: share of persons whose merged value is the truth, is another value, is unknown."""
    from person_finder.core import contract

    ids, docs = dataset.values(["persons.detections.id", f"persons.detections.{contract.MERGED_ATTRIBUTES_FIELD}"],
                               unwind=True)
    out = {}
    for field in fields:
        right = wrong = unknown = 0
        for label_id, doc in zip(ids, docs):
            doc = doc.to_dict() if hasattr(doc, "to_dict") else doc
            value = doc.get(field) if doc else None
            value = (value or ["unknown"])[0] if isinstance(value, list) else value
            want = _truth(spec_of[label_id])[field]
            want = want[0] if isinstance(want, list) else want
            if value in (None, "unknown"):
                unknown += 1
            elif value == want:
                right += 1
            else:
                wrong += 1
        out[field] = {"right": right / len(ids), "wrong": wrong / len(ids), "unknown": unknown / len(ids)}
    return out


def ranking(root, views, num_queries, matcher=None):
    import fiftyone as fo

    from person_finder.core.attributes.constraints import parse_offline
    from person_finder.core.identities.attributes import attribute_persons, indexed_persons
    from person_finder.core.search.crops import crop_files
    from person_finder.testing import people_training, synthetic
    from person_finder.testing.fake_gemini import FakeGemini, image_key

    matcher = people_training.finetune_tiny_siglip(matcher or os.path.join(root, "matcher"))  # + its reliability
    specs = people_training.held_out_specs()
    per_scene = 4
    scenes_specs = []
    for v in range(views):
        order = [specs[(i * 5 + v * 3) % len(specs)] for i in range(len(specs))]  # each person once per round
        scenes_specs += [order[i:i + per_scene] for i in range(0, len(order), per_scene)]
    dataset = fo.Dataset()
    scenes = synthetic.add_indexed_scenes(dataset, os.path.join(root, "scenes"), scenes_specs, matcher, width=640,
                                          height=360, seed=4)
    persons = indexed_persons(dataset)
    spec_of = synthetic.scene_specs(dataset, scenes)
    queries = _queries(specs, num_queries)
    out = {"queries": len(queries), "persons": len(spec_of), "scenes": len(scenes), "views_per_person": views,
           "parsed_queries": [(text, parse_offline(text)) for text, _ in queries]}
    out["similarity"] = _evaluate(dataset, queries, spec_of)

    attribute_persons(dataset, provider="zero-shot", calibrated=False)
    out["zero_shot_accuracy_uncalibrated"] = _attribute_accuracy(dataset, spec_of)
    out["fused_zero_shot_uncalibrated"] = _fused(dataset, queries, spec_of)
    started = time.perf_counter()
    out["zero_shot_run"] = attribute_persons(dataset, provider="zero-shot", overwrite=True)
    out["zero_shot_seconds"] = round(time.perf_counter() - started, 2)
    out["zero_shot_accuracy"] = _attribute_accuracy(dataset, spec_of)
    out["fused_zero_shot"] = _fused(dataset, queries, spec_of)

    # the same queries with attributes as a good model gives them: the fake Gemini answers each crop's truth
    with FakeGemini() as fake:
        for label_id, path in crop_files(persons, os.path.join(root, "crops")).items():
            with open(path, "rb") as f:
                fake.answers[image_key(f.read())] = _truth(spec_of[label_id])
        attribute_persons(dataset, provider="gemini", overwrite=True, api_key="bench", base_url=fake.base_url,
                          crop_folder=os.path.join(root, "crops"))
    out["fused_true_attributes"] = _fused(dataset, queries, spec_of)
    out["dataset"] = dataset
    return out


def parsing():
    from person_finder.core.attributes.constraints import parse_offline
    from person_finder.testing.attribute_queries import value_queries

    rows = [(field, value, query, parse_offline(query)) for field, value, query in value_queries()]
    right = sum(1 for field, value, _, parsed in rows if parsed.get(field) == value)
    return {"values": len(rows), "right": right, "accuracy": right / len(rows),
            "table": [{"attribute": f, "value": v, "query": q, "parsed": p, "ok": p.get(f) == v}
                      for f, v, q, p in rows]}


def verification(dataset, rpm, latency, root):
    from person_finder.core import defaults
    from person_finder.core.search.verify import verify_persons
    from person_finder.testing.fake_gemini import FakeGemini

    candidates = min(int(rpm * 65 / 60 / defaults.GEMINI_RPM_HEADROOM), dataset.count("persons.detections"))
    with FakeGemini(latency=latency, rpm_limit=rpm) as fake:
        fake.responder = lambda images, text: {"match": "yes"}
        started = time.perf_counter()
        out = verify_persons(dataset, "a person in a red top", k=candidates, api_key="bench", base_url=fake.base_url,
                             requests_per_minute=rpm, crop_folder=os.path.join(root, "crops"))
        seconds = time.perf_counter() - started
        first = min(r["time"] for r in fake.requests)
        in_first_minute = sum(1 for r in fake.requests if r["status"] == 200 and r["time"] < first + 60)
        statuses = fake.statuses()
    ended = sum(1 for r in out["rows"] if r["verification"] and ("match" in r["verification"]
                                                                  or "error" in r["verification"]))
    return {"rpm_limit": rpm, "candidates": candidates, "achieved_first_minute": in_first_minute,
            "fraction": in_first_minute / rpm, "rate_limited_429": statuses.get(429, 0), "seconds": round(seconds, 1),
            "verified": out["verified"], "failed": out["failed"], "ended": ended}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=5, help="scene images each person appears in")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rpm", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--matcher", help="folder of the test kit's fine-tuned tiny SigLIP (default: train one)")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="bench-attribute-search-")
    from person_finder.testing.mongo import start_private_mongod

    start_private_mongod(os.path.join(root, "db"))
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")

    r = ranking(root, args.views, args.queries, args.matcher)
    p = parsing()
    v = verification(r.pop("dataset"), args.rpm, args.latency, root)
    print(f"\n{'attribute':20s} {'value':18s} {'ok':3s} query -> parse")
    for row in p["table"]:
        print(f"{row['attribute']:20s} {row['value']:18s} {'yes' if row['ok'] else 'NO':3s} "
              f"{row['query']!r} -> {row['parsed']}")
    print(f"\n{'query':60s} constraints (offline parse)")
    for text, constraints in r["parsed_queries"][:10]:
        print(f"{text:60s} {constraints}")
    reliability = r["zero_shot_run"]["reliability"] or {}
    print("\nzero-shot attributes (tiny matcher) per person: right / wrong / unknown, without and with the "
          "reliability measured on the validation people")
    for field, acc in r["zero_shot_accuracy"].items():
        raw = r["zero_shot_accuracy_uncalibrated"][field]
        print(f"  {field:16s} {raw['right']:.2f} / {raw['wrong']:.2f} / {raw['unknown']:.2f}    "
              f"{acc['right']:.2f} / {acc['wrong']:.2f} / {acc['unknown']:.2f}    "
              f"reliability {reliability.get(field, float('nan')):.2f}")
    print(f"\n{r['queries']} queries over {r['persons']} persons in {r['scenes']} scenes:")
    print(f"  {'':44s} {'Rank-1':>8s} {'P@5':>8s}")
    rows = [("similarity alone", r["similarity"])]
    rows += [(f"fused, zero-shot attributes, weight {w}", m) for w, m in r["fused_zero_shot"].items()]
    rows += [(f"fused, zero-shot uncalibrated, weight {w}", m)
             for w, m in r["fused_zero_shot_uncalibrated"].items()]
    rows += [(f"fused, true attributes (fake Gemini), weight {w}", m) for w, m in r["fused_true_attributes"].items()]
    for name, m in rows:
        print(f"  {name:44s} {m['rank1']:8.3f} {m['p5']:8.3f}")
    sim, zero, true = r["similarity"], r["fused_zero_shot"][WEIGHTS[0]], r["fused_true_attributes"][WEIGHTS[0]]
    figures = [
        _report.figure(f"Rank-1, similarity alone ({r['queries']} attribute queries)", round(sim["rank1"], 3)),
        _report.figure("Rank-1, fused with zero-shot attributes", round(zero["rank1"], 3), "",
                       (">", round(sim["rank1"], 3))),
        _report.figure("Rank-1, fused with zero-shot attributes, uncalibrated",
                       round(r["fused_zero_shot_uncalibrated"][WEIGHTS[0]]["rank1"], 3)),
        _report.figure("Rank-1, fused with true attributes (fake Gemini)", round(true["rank1"], 3), "",
                       (">", round(sim["rank1"], 3))),
        _report.figure("precision@5, similarity alone", round(sim["p5"], 3)),
        _report.figure("precision@5, fused with zero-shot attributes", round(zero["p5"], 3), "",
                       (">", round(sim["p5"], 3))),
        _report.figure("precision@5, fused with zero-shot attributes, uncalibrated",
                       round(r["fused_zero_shot_uncalibrated"][WEIGHTS[0]]["p5"], 3)),
        _report.figure("precision@5, fused with true attributes (fake Gemini)", round(true["p5"], 3), "",
                       (">", round(sim["p5"], 3))),
        _report.figure("offline parse: schema values parsed right", round(p["accuracy"], 3), "", (">=", 0.9)),
        _report.figure(f"verification: achieved / server limit of {args.rpm} RPM (first minute)",
                       round(v["fraction"], 3), "", (">=", 0.9)),
        _report.figure("verification: candidates ending verified or with an error",
                       round(v["ended"] / v["candidates"], 3), "", (">=", 1.0)),
        _report.figure("verification: 429 answers", v["rate_limited_429"], "", ("<=", max(2, args.rpm // 100))),
        _report.figure(f"zero-shot attributes for {r['persons']} indexed persons", r["zero_shot_seconds"], "s"),
    ]
    return _report.write("attribute_search", figures, {"ranking": r, "parse": p, "verification": v})


if __name__ == "__main__":
    main()
