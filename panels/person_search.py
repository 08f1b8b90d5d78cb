"""Panel: type a description, see the ranked people as crops, open them, keep recent queries.

A thin adapter over :mod:`core.search.panel_data`: the state holds only the form
(query, index, k, threshold, recent queries); crops and the histogram go
out as panel data.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults

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
        from ..core.search import panel_data

        indexes = panel_data.text_indexes(ctx.dataset)
        keys = [i["key"] for i in indexes]
        form = ctx.panel.state.form or {}
        brain_key = form.get("brain_key")
        ctx.panel.state.set({
            "indexes": {i["key"]: i["patches_field"] for i in indexes},
            "form.brain_key": brain_key if brain_key in keys else (
                contract.PERSON_INDEX_KEY if contract.PERSON_INDEX_KEY in keys else (keys or [None])[0]),
            "form.k": form.get("k") or defaults.TOP_K,
            "threshold": defaults.MATCH_THRESHOLD if ctx.panel.state.threshold is None else ctx.panel.state.threshold,
            "recent": panel_data.recent_queries(ctx.dataset),
            "summary": None,
            "error": None,
        })
        ctx.panel.data.clear()

    def on_change_dataset(self, ctx):
        ctx.panel.state.clear()
        self.on_load(ctx)

    def on_search(self, ctx):
        from ..core.search import panel_data

        state = ctx.panel.state
        form = state.form or {}
        try:
            result = panel_data.run_query(ctx.dataset, form.get("query") or "", form.get("brain_key"),
                                          k=int(form.get("k") or defaults.TOP_K), threshold=float(state.threshold))
        except ValueError as e:
            state.set({"error": str(e), "summary": None})
            ctx.panel.data.clear()
            return
        query = form["query"].strip()
        state.set({"recent": panel_data.remember_query(ctx.dataset, query), "error": None, "searched": query,
                   "searched_key": form["brain_key"],
                   "ranked": len(result["rows"]),
                   "summary": f"**{result['above']}** of {result['total']} people score at or above "
                              f"{float(state.threshold):.3f} for *{query}*"})
        ctx.panel.data.set({"histogram": _histogram_traces(result["histogram"]),
                            "results": {_card(row["rank"]): {"crop": row["crop"], "caption": _caption(row)}
                                        for row in result["rows"]}})

    def on_recent(self, ctx):
        ctx.panel.state.set("form.query", ctx.params["query"])
        self.on_search(ctx)

    def on_threshold(self, ctx):
        if ctx.panel.state.summary:
            self.on_search(ctx)

    def on_open(self, ctx):
        from ..core.search import panel_data

        row = self._rows(ctx)[int(ctx.params["rank"]) - 1]
        field = self._patches_field(ctx)
        view = panel_data.result_view(ctx.dataset, row, field)
        ctx.ops.set_view(view=view)
        if row.get("frame_number") is None:
            ctx.ops.open_sample(id=row["sample_id"])
            ctx.ops.set_selected_labels([{"label_id": row["label_id"], "sample_id": row["sample_id"], "field": field}])
        else:
            ctx.ops.open_sample(id=view.first().id)

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
                      on_click=contract.PANEL_INDEX_OPERATOR, prompt=True)
            panel.btn("refresh", label="Refresh", on_click=self.on_load)
            return types.Property(panel)

        form = panel.h_stack("form", align_y="center")
        form.str("query", label="Describe the person", view=types.TextFieldView(space=5))
        choices = types.DropdownView(label="Index", space=2)
        for key in state.indexes:
            choices.add_choice(key, label=key)
        form.enum("brain_key", choices.values(), view=choices)
        form.int("k", label="k", min=1, max=defaults.PANEL_MAX_K, view=types.FieldView(space=1))
        form.btn("search", label="Search", icon="search", variant="contained", on_click=self.on_search)
        panel.float("threshold", label="Threshold", min=-1.0, max=1.0,
                    view=types.SliderView(min=-1.0, max=1.0, step=0.01), on_change=self.on_threshold)
        if state.recent:
            recent = panel.h_stack("recent", label="Recent queries")
            for i, query in enumerate(state.recent):
                recent.btn(f"recent_{i}", label=query, variant="outlined", on_click=self.on_recent,
                           params={"query": query})
        if state.error:
            panel.view("error", types.Error(label=state.error))
        if not state.summary:
            return types.Property(panel)

        panel.md(state.summary, name="summary")
        panel.plot("histogram", layout={"height": 220, "margin": {"t": 10, "b": 40, "l": 40, "r": 10},
                                        "xaxis": {"title": "cosine similarity"}, "bargap": 0.05,
                                        "shapes": [_threshold_line(state.threshold)], "showlegend": False},
                   config={"displayModeBar": False})
        panel.btn("show_all", label=f"Show all {state.ranked} results", icon="visibility", on_click=self.on_show_all)
        grid = panel.grid("results", orientation="horizontal", columns=RESULT_COLUMNS, gap=2)
        for rank in range(1, (state.ranked or 0) + 1):
            card = grid.v_stack(_card(rank), gap=0)
            card.img("crop", height=f"{defaults.PANEL_CROP_HEIGHT}px", on_click=self.on_open,
                     params={"rank": rank}, alt_text=f"rank {rank}")
            card.str("caption", view=types.MarkdownView(read_only=True))
        return types.Property(panel)

    def _patches_field(self, ctx):
        return ctx.panel.state.indexes[ctx.panel.state.searched_key]

    def _rows(self, ctx):
        """The rows of the last search, ranked again (one text embedding; state keeps no rows)."""
        from ..core.search import rank_persons

        state = ctx.panel.state
        return rank_persons(ctx.dataset, state.searched, brain_key=state.searched_key, k=int(state.ranked))


def _card(rank):
    return f"r{rank}"


def _caption(row):
    who = f"track {row['track_id']}" if row.get("frame_number") is not None else "person"
    where = f"frame {row['frame_number']}" if row.get("frame_number") is not None else "image"
    prob = f" · p={row['probability']:.2f}" if row.get("probability") is not None else ""
    return f"**#{row['rank']}** · {row['similarity']:.3f}{prob}  \n{who} · {where}  \nsample `{row['sample_id'][-6:]}`"


def _histogram_traces(histogram):
    edges = histogram["edges"]
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    above = [c >= histogram["threshold"] for c in centers]
    return [{"type": "bar", "x": centers, "y": histogram["counts"], "width": edges[1] - edges[0],
             "marker": {"color": ["#ff6d04" if a else "#888888" for a in above]}}]


def _threshold_line(threshold):
    return {"type": "line", "x0": threshold, "x1": threshold, "yref": "paper", "y0": 0, "y1": 1,
            "line": {"color": "#ff6d04", "width": 2, "dash": "dash"}}
