"""Panel: type a description, see the ranked people as crops, open them, keep recent queries.

A thin adapter over :mod:`core.search.panel_data`: the state holds only the form
(query, index, k, threshold, recent queries); crops and the histogram go
out as panel data.
"""

from __future__ import annotations

import os

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults
from .session_compat import fill_label_type, open_sample

RESULT_COLUMNS = 4


class PersonSearchPanel(foo.Panel):
    """Ranked person crops for a text query, with score histogram and recent queries."""

    @property
    def config(self):
        return foo.PanelConfig(
            name="person_search",
            label="Person search",
            icon="person_search",
            help_markdown="Describe a person (clothes, bags, colours); see the best matching people, ranked.",
            surfaces="grid",
        )

    # ------------------------------------------------------------------ events

    def on_load(self, ctx):
        from ..core.jobs import recent_jobs
        from ..core.search import last_search, panel_data

        indexes = panel_data.text_indexes(ctx.dataset)
        keys = [i["key"] for i in indexes]
        form = ctx.panel.state.form or {}
        brain_key = form.get("brain_key")
        brain_key = brain_key if brain_key in keys else (
            contract.PERSON_INDEX_KEY if contract.PERSON_INDEX_KEY in keys else (keys or [None])[0])
        threshold = ctx.panel.state.threshold
        record = last_search(ctx.dataset)
        if threshold is None:
            from ..core.models.matcher import matcher_threshold

            model = next((i["model"] for i in indexes if i["key"] == brain_key), None) or defaults.MATCHER_MODEL
            text_record = record and record["threshold_type"] == "cosine" and not record.get("by_example")
            threshold = record["threshold"] if text_record else \
                matcher_threshold(model)
        ctx.panel.state.set({
            "indexes": {i["key"]: i["patches_field"] for i in indexes},
            "form.brain_key": brain_key,
            "form.k": form.get("k") or defaults.TOP_K,
            "threshold": round(float(threshold), defaults.PANEL_SCORE_DECIMALS),
            "recent": panel_data.recent_queries(ctx.dataset),
            "labels": _labels_line(record),
            "jobs": [_job_line(job) for job in recent_jobs(ctx.dataset, contract.PANEL_INDEX_OPERATOR)],
            "summary": None,
            "example": None,
            "error": None,
            "pending": None,
        })
        ctx.panel.data.clear()

    def on_change_dataset(self, ctx):
        ctx.panel.state.clear()
        self.on_load(ctx)

    def on_index(self, ctx):
        """Open the index operator's form; when it ran (or was scheduled) the panel reloads itself."""
        ctx.prompt(contract.PANEL_INDEX_OPERATOR, on_success=self.on_load)

    def on_search(self, ctx):
        from ..core.search import panel_data

        state = ctx.panel.state
        form = state.form or {}
        had_labels = bool(state.labels)
        try:
            if (form.get("query") or "").strip() != state.chips_query:  # a new query: parse it into chips
                state.set({"chips": panel_data.query_chips(ctx.dataset, form.get("brain_key"), form.get("query"),
                                                           api_key=ctx.secrets.get(contract.GEMINI_SECRET)),
                           "chips_query": (form.get("query") or "").strip()})
            result = panel_data.run_query(ctx.dataset, form.get("query") or "", form.get("brain_key"),
                                          k=_whole(form.get("k")), threshold=float(state.threshold), label=True,
                                          constraints=_constraints(state))
        except ValueError as e:
            state.set({"error": str(e), "summary": None})
            ctx.panel.data.clear()
            return
        query = form["query"].strip()
        state.set({"recent": panel_data.remember_query(ctx.dataset, query), "example": None, "searched": query,
                   "searched_key": form["brain_key"],
                   "summary": f"**{result['above']}** of {result['total']} people score at or above "
                              f"{_score(state.threshold)} for *{query}*; they are labelled "
                              f"`{contract.MATCH_LABEL}` in the grid"})
        self._show(ctx, result, had_labels)

    def on_more_like_this(self, ctx):
        """Query by example from a result card: everyone ranked against that person, the grid relabelled."""
        from ..core.identities.examples import run_example

        state = ctx.panel.state
        row = self._rows(ctx)[int(ctx.params["rank"]) - 1]
        had_labels = bool(state.labels)
        result = run_example(ctx.dataset, row, state.searched_key, k=int(state.ranked), label=True)
        state.set({"example": row["label_id"], "searched": result["query"],
                   "summary": f"*{result['query']}*: **{result['above']}** of {result['total']} other people "
                              f"score at or above {_score(defaults.IDENTITY_LINK_THRESHOLD)} (image to image, "
                              f"the identity link threshold); they are labelled `{contract.MATCH_LABEL}` in the grid"})
        self._show(ctx, result, had_labels)

    def _show(self, ctx, result, had_labels):
        """Show a search's result (cards, histogram) and make the grid draw the labels it wrote."""
        from ..core.search import last_search, saved_color_scheme

        record = last_search(ctx.dataset)
        ctx.panel.state.set({"error": None, "ranked": len(result["rows"]), "labels": _labels_line(record)})
        ctx.panel.data.set({"histogram": _histogram_traces(result["histogram"]),
                            "results": {_card(row["rank"]): {"crop": row["crop"], "caption": _caption(row)}
                                        for row in result["rows"]}})
        # the labels changed in the database; the first search also added score fields and match colours.
        # Only our boxes are drawn: boxes copied from a detections field sit exactly on their source's.
        ctx.ops.set_active_fields(_active_fields(record))
        if had_labels:
            ctx.ops.reload_samples()
        else:
            ctx.ops.reload_dataset()
        ctx.trigger("set_color_scheme", params=saved_color_scheme(ctx.dataset))  # match colours, now

    def on_chip(self, ctx):
        """Toggle one parsed constraint and search again."""
        field = ctx.params["field"]
        ctx.panel.state.set(f"chips.{field}.on", not ctx.panel.state.chips[field]["on"])
        self.on_search(ctx)

    def on_verify(self, ctx):
        """Open the verification form (it shows the cost estimate first); the badges appear when it ran."""
        from ..core.attributes.constraints import format_constraints

        state = ctx.panel.state
        ctx.prompt(f"{contract.PLUGIN_NAME}/verify_persons", params={
            "query": state.searched, "k": int(state.ranked), "brain_key": state.searched_key,
            "constraints": format_constraints(_constraints(state))}, on_success=self.on_search)

    def on_recent(self, ctx):
        ctx.panel.state.set("form.query", ctx.params["query"])
        self.on_search(ctx)

    def on_threshold(self, ctx):
        ctx.panel.state.threshold = round(float(ctx.panel.state.threshold), defaults.PANEL_SCORE_DECIMALS)
        if ctx.panel.state.summary and not ctx.panel.state.example:  # an example's cut is the link threshold
            self.on_search(ctx)

    def on_open(self, ctx):
        """Set the view of the clicked result; it is opened in :meth:`on_change_view`, once the App has that view.

        Opening (or selecting in) a view the App has not loaded yet fails: a
        clip's id does not exist before its clips view does ("sample not
        found"), and the App clears selected labels when the view changes.
        """
        from ..core.search import panel_data

        rank = int(ctx.params["rank"])
        row = self._rows(ctx)[rank - 1]
        field = self._patches_field(ctx)
        view = panel_data.result_view(ctx.dataset, row, field)
        ctx.ops.set_active_fields(_shown_fields(row, field))  # the grid draws our boxes, not the source under them
        if _same_view(view, ctx.view):
            self._open(ctx, row, field)
        else:
            ctx.panel.state.pending = rank
            ctx.ops.set_view(view=view)

    def on_change_view(self, ctx):
        pending = ctx.panel.state.pending
        if pending:
            ctx.panel.state.pending = None
            self._open(ctx, self._rows(ctx)[int(pending) - 1], self._patches_field(ctx))

    def _open(self, ctx, row, field):
        if row.get("frame_number") is None:
            fill_label_type()  # else a Python session resets the App 10 s later (FiftyOne 1.22 bug)
            open_sample(ctx, row["sample_id"])  # with the fields added since the page loaded
            ctx.ops.set_selected_labels([{"label_id": row["label_id"], "sample_id": row["sample_id"],
                                          "field": field}])
        else:
            clip = ctx.view.first()
            open_sample(ctx, clip.id)
            first, last = clip.support
            ctx.ops.notify(f"Track {row['track_id']} of {_file(row)}: frames {first}-{last}")
        ctx.ops.set_active_fields(_shown_fields(row, field))  # now for the sample modal

    def on_show_all(self, ctx):
        from ..core.search import panel_data

        ctx.ops.set_view(view=panel_data.results_view(ctx.dataset, self._rows(ctx), self._patches_field(ctx)))

    # ------------------------------------------------------------------ layout

    def render(self, ctx):
        panel = types.Object()
        state = ctx.panel.state
        if not state.indexes:
            panel.md("### No person index yet\nThis dataset has no similarity index over person boxes that "
                     "answers text queries. Index the people first (detection, tracking for videos, embedding).",
                     name="no_index")
            panel.btn("index", label="Index persons", icon="person_search", variant="contained",
                      on_click=self.on_index)
            panel.btn("refresh", label="Refresh", on_click=self.on_load)
            _jobs(panel, state)
            return types.Property(panel)

        form = panel.h_stack("form", align_y="center")
        form.str("query", label="Describe the person", view=types.TextFieldView(space=5))
        choices = types.DropdownView(label="Index", space=2)
        for key in state.indexes:
            choices.add_choice(key, label=key)
        form.enum("brain_key", choices.values(), view=choices)
        form.int("k", label="k", min=1, max=defaults.PANEL_MAX_K, view=types.FieldView(space=1))
        form.btn("search", label="Search", icon="search", variant="contained", on_click=self.on_search)
        panel.float("threshold", label="Threshold", min=-1.0, max=1.0, on_change=self.on_threshold,
                    view=types.SliderView(min=-1.0, max=1.0, view_multiple_of=0.01, label="Threshold (cosine)",
                                          value_precision=defaults.PANEL_SCORE_DECIMALS))
        if state.chips:
            chips = panel.h_stack("chips", label="Attribute constraints (click one to switch it off or on)")
            for field, chip in state.chips.items():
                chips.btn(f"chip_{field}", label=f"{field}={chip['value']}", on_click=self.on_chip,
                          variant="contained" if chip["on"] else "outlined", params={"field": field})
        if state.recent:
            recent = panel.h_stack("recent", label="Recent queries")
            for i, query in enumerate(state.recent):
                recent.btn(f"recent_{i}", label=query, variant="outlined", on_click=self.on_recent,
                           params={"query": query})
        if state.error:
            panel.view("error", types.Error(label=state.error))
        if state.labels:
            panel.md(state.labels, name="labels")
        _jobs(panel, state)
        if not state.summary:
            return types.Property(panel)

        panel.md(state.summary, name="summary")
        panel.plot("histogram", layout={"height": 220, "margin": {"t": 10, "b": 45, "l": 55, "r": 10},
                                        "xaxis": {"title": {"text": "cosine similarity"}},
                                        "yaxis": {"title": {"text": "people"}}, "bargap": 0.05,
                                        "shapes": [_threshold_line(_cut(state))], "showlegend": False},
                   config={"displayModeBar": False})
        panel.btn("show_all", label=f"Show all {state.ranked} results", icon="visibility", on_click=self.on_show_all)
        if not state.example:  # verification checks a text query; an example has none
            panel.btn("verify", label="Verify with Gemini", icon="fact_check", on_click=self.on_verify)
        grid = panel.grid("results", orientation="horizontal", columns=RESULT_COLUMNS, gap=2)
        for rank in range(1, (state.ranked or 0) + 1):
            card = grid.v_stack(_card(rank), gap=0)
            card.img("crop", height=f"{defaults.PANEL_CROP_HEIGHT}px", on_click=self.on_open,
                     params={"rank": rank}, alt_text=f"rank {rank}")
            card.str("caption", view=types.MarkdownView(read_only=True))
            card.btn("like", label="More like this", icon="person_search", variant="outlined",
                     on_click=self.on_more_like_this, params={"rank": rank})
        return types.Property(panel)

    def _patches_field(self, ctx):
        return ctx.panel.state.indexes[ctx.panel.state.searched_key]

    def _rows(self, ctx):
        """The rows of the last search (a text or an example), ranked again (state keeps no rows)."""
        from ..core.identities.examples import rank_like
        from ..core.search import rank_persons

        state = ctx.panel.state
        if state.example:
            return rank_like(ctx.dataset, state.searched_key, k=int(state.ranked), label_id=state.example)
        return rank_persons(ctx.dataset, state.searched, brain_key=state.searched_key, k=int(state.ranked),
                            constraints=_constraints(state) or None)


def _constraints(state):
    """The chips switched on, as constraints."""
    return {field: chip["value"] for field, chip in (state.chips or {}).items() if chip["on"]}


def _cut(state):
    """The cosine that makes a match in the results shown: the slider's (a text), the link threshold (an example)."""
    return defaults.IDENTITY_LINK_THRESHOLD if state.example else state.threshold


def _card(rank):
    return f"r{rank}"


def _caption(row):
    where = f"track {row['track_id']} · frame {row['frame_number']}" if row.get("frame_number") is not None \
        else "person"
    prob = f" · p={row['probability']:.2f}" if row.get("probability") is not None else ""
    return f"**#{row['rank']}** · {_score(row['similarity'])}{prob}{_badge(row)}  \n{where}  \n`{_file(row)}`"


def _badge(row):
    """The verified badge of a result: Gemini's cached verdict for this query, if any."""
    verdict = row.get("verification") or {}
    if verdict.get("match") == "yes":
        return " · ✅ verified"
    if verdict.get("match") == "no":
        return f" · ❌ not {verdict.get('failed_constraint') or 'a match'}"
    return " · ❔ unsure" if verdict.get("match") == "unsure" else ""


def _file(row):
    return os.path.basename(row["filepath"])


def _score(value):
    return f"{float(value):.{defaults.PANEL_SCORE_DECIMALS}f}"


def _whole(value):
    """The panel's k as an int when it is a whole number (the App may send 5.0), else as given (rejected later)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _same_view(a, b):
    return a._serialize(include_uuids=False) == b._serialize(include_uuids=False)


def _shown_fields(row, field):
    if row.get("frame_number") is None:
        return [field]
    return [f"frames.{field}", contract.VIDEO_MATCHES_FIELD]


def _active_fields(record):
    """The fields that show a search's people: its persons field (and for videos the matched spans)."""
    labels = record["labels"]
    return [labels, contract.VIDEO_MATCHES_FIELD] if labels.startswith("frames.") else [labels]


def _labels_line(record):
    """Which search the dataset's ``match`` labels come from (the one source of truth), or None."""
    if not record:
        return None
    cut = f"{record['threshold_type']} >= {record['threshold']:g}"
    return (f"Grid labels: **{record['matches']}** of {record['people']} people are `{contract.MATCH_LABEL}` "
            f"for *{record['query']}* ({cut}, index `{record['brain_key']}`, {record['at']})")


def _job_line(job):
    state = job["state"]
    if state == "failed":
        return f"Indexing job **failed** ({job['at']}): {job['error']}"
    if state == "completed":
        return f"Indexing job completed ({job['at']}): {job['message'] or 'done'}"
    progress = f" {job['progress']:.0%}" if job.get("progress") is not None else ""
    return f"Indexing job **{state}**{progress} ({job['at']}); press Refresh to update"


def _jobs(panel, state):
    for i, line in enumerate(state.jobs or []):
        view = types.Error if "**failed**" in line else types.Notice
        panel.view(f"job_{i}", view(label=line))


def _histogram_traces(histogram):
    edges = histogram["edges"]
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    above = [c >= histogram["threshold"] for c in centers]
    return [{"type": "bar", "x": centers, "y": histogram["counts"], "width": edges[1] - edges[0],
             "marker": {"color": ["#ff6d04" if a else "#888888" for a in above]}}]


def _threshold_line(threshold):
    return {"type": "line", "x0": threshold, "x1": threshold, "yref": "paper", "y0": 0, "y1": 1,
            "line": {"color": "#ff6d04", "width": 2, "dash": "dash"}}
