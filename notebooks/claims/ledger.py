# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Claims ledger: what replicated and what did not
#
# Every number the three papers publish, transcribed once (`alignlib/claims/published.yml`, with table,
# figure or section), beside what this book measured for it, on which data, and a verdict computed by a
# stated rule. Pages register their measurements when they run; claims no page has measured yet say so.
# The papers' numbers are data here, never our results.

# %% tags=["parameters"]
profile = "quick"

# %%
import pandas as pd
from IPython.display import HTML, Markdown, display
from myst_nb import glue

from alignlib.claims import RULES, ledger
from alignlib.claims.ledger import VERDICTS, citation
from alignlib.report import interval_text, save_table, show_provenance

pd.set_option("display.max_rows", None)
led = ledger()
show_provenance(profile, "the results/ tables of every chapter page built in this profile")
_ = save_table(led, "claims", "ledger", {"profile": profile})

# %% [markdown]
# ## Summary
#
# Counts of claims per verdict and paper. The rules:

# %%
display(Markdown("\n".join(f"* **{k}** — {v}" for k, v in RULES.items())
                 + "\n* **not measured yet** — no page of this build measured the claim"))
summary = led.pivot_table(
    index="paper", columns="verdict", values="id", aggfunc="count", fill_value=0
)
for verdict, n in led.verdict.value_counts().items():
    glue("n_" + "".join(c if c.isalnum() else "_" for c in verdict), int(n), display=False)
glue("n_claims", len(led), display=False)
summary

# %% [markdown]
# {glue:text}`n_claims` published numbers in all. Where a chapter runs on a stand-in for the paper's data
# (the ground-truth twin instead of the Stringer recordings, public retina cells instead of a private
# recording), numbers are shown side by side as "not comparable on this data": a verdict that compared them
# would be meaningless. Qualitative claims (e.g. "retrieval far above chance") get a verdict only when a
# page measures them on the paper's kind of data; on a stand-in they are shown side by side too.

# %% [markdown]
# ## Relative claims: what holds on our data
#
# Absolute numbers measured on a stand-in are not comparable, but the papers' *relative* claims are: "A
# beats B", "natural images beat whitened ones", "removing X lowers the score". Each relative claim comes
# from the papers' words (`direction` in `published.yml`) or from their own tables (the sign of the
# published difference between two rows, `relations:` in `published.yml`), and is judged by the
# `paired_difference` rule above: our paired difference's 95 % interval on the paper's side of zero
# (**holds**), on the other side (**reversed**) or across zero (**inconclusive**); no verdict from runs that
# did not converge. A claim made of several such parts (an ordering of three models at every k; a property
# of both towers) is judged by the `conjunction` rule: it holds when every part holds and is reversed when
# one part is. The page that measured each one says over what the difference is paired. Most intervals
# resample the paired test items (images, cells, stimuli) of models averaged over their training seeds, so
# they are conditional on the trained seeds; where a claim's note gives a second interval "with the seeds
# resampled too", that one also carries the spread between seeds (three per model: a rough interval), and a
# verdict whose second interval crosses zero rests on these seeds.

# %%
relative = led[led.kind == "relative"]
judged = relative.dropna(subset=["ours"])
rel_counts = judged.verdict.value_counts()
for name in ("holds", "reversed", "inconclusive", "no verdict: not converged"):
    glue("rel_" + "".join(c if c.isalnum() else "_" for c in name), int(rel_counts.get(name, 0)),
         display=False)
glue("rel_n", len(relative), display=False)
glue("rel_n_measured", len(judged), display=False)


def side(direction: str, value: float) -> str:
    """The paper's side of A - B, with its published difference when the paper gives numbers."""
    text = "A > B" if direction == ">" else "A < B"
    return f"{text} ({value:+.3g})" if pd.notna(value) else text


rel_view = judged.assign(
    paper=[side(d, v) for d, v in zip(judged.direction, judged.value)],
    ours=[interval_text(o, lo, hi, 3)
          for o, lo, hi in zip(judged.ours, judged.ci_low, judged.ci_high)],
)[["id", "measures", "paper", "ours", "verdict", "page", "note"]]
landing = rel_view[rel_view.verdict.isin(["holds", "reversed"])].drop(columns="note")
glue("landing_relative", HTML(
    landing.to_html(classes="table", border=0, index=False) if len(landing)
    else "<p>No relative claim has a verdict of holds or reversed in this build yet.</p>"),
    display=False)
rel_view.set_index("id")

# %% [markdown]
# {glue:text}`rel_n` relative claims in all; this build measured {glue:text}`rel_n_measured`:
# {glue:text}`rel_holds` hold, {glue:text}`rel_reversed` are reversed, {glue:text}`rel_inconclusive` are
# inconclusive and {glue:text}`rel_no_verdict__not_converged` have no verdict because a run behind them did
# not converge. The rest are "not measured yet" (the chapter pages that would measure them, or the
# converged runs they need, are not in this build), or shown side by side where our data cannot judge them
# (e.g. a single twin mouse is not the paper's mouse of that name).

# %% [markdown]
# ## Summary by chapter
#
# The same counts per chapter of the book (the landing page shows this table and the figure).

# %%
import matplotlib.pyplot as plt

from alignlib import plots

by_chapter = led.pivot_table(
    index="chapter", columns="verdict", values="id", aggfunc="count", fill_value=0
)
by_chapter = by_chapter[[v for v in VERDICTS if v in by_chapter.columns]]
by_chapter["all claims"] = by_chapter.sum(axis=1)
_ = save_table(by_chapter.reset_index(), "claims", "ledger_by_chapter", {"profile": profile})
fig, ax = plt.subplots(figsize=(9, 0.6 * len(by_chapter) + 1.6))
by_chapter.drop(columns="all claims").plot.barh(stacked=True, ax=ax, width=0.7)
ax.invert_yaxis()
ax.set_xlabel("published claims")
ax.set_ylabel("chapter")
ax.legend(title="verdict", loc="center left", bbox_to_anchor=(1.01, 0.5))
fig.tight_layout()
_ = plots.save_figure(fig, "claims", "verdicts_by_chapter", page="claims/ledger",
                      caption="Published claims per verdict and chapter")
glue("landing_summary", HTML(by_chapter.reset_index().rename_axis(columns=None)
                             .to_html(classes="table", border=0, index=False)), display=False)
by_chapter

# %%
# Glued for the landing page (book/intro.md): one headline claim per paper, published beside ours,
# and a
# gallery of every figure the pages saved with plots.save_figure (thumbnails linked to their pages).
HEADLINES = {"DINA": "dina.table1.DINA.mean.1", "VNA": "vna.table1.mouse-movie.VNA.average",
             "ViST": "vist.table2.Vi-ST.Mov1-Mov2"}


def finding(rows: pd.DataFrame) -> str:
    """What this book measured for one claim, in words (every row registered for it)."""
    done = rows.dropna(subset=["ours"])
    if done.empty:
        return "not measured yet"
    return "; ".join(
        f"{r.ours:.3g}"
        + ("" if pd.isna(r.ci_low) else f" [{r.ci_low:.3g}, {r.ci_high:.3g}]")
        + (f" {r.unit}" if isinstance(r.unit, str) and r.unit else "")
        + f" on {r.our_data} ({r.verdict})"
        for r in done.itertuples()
    )


for paper, claim in HEADLINES.items():
    rows = led[led.id == claim]
    glue(
        f"headline_{paper}_published",
        float(rows.value.iloc[0]) if len(rows) else float("nan"),
        display=False,
    )
    glue(
        f"headline_{paper}_found",
        finding(rows) if len(rows) else "claim not in published.yml",
        display=False,
    )
for chapter, n in by_chapter["all claims"].items():
    glue(f"n_claims_{chapter}", int(n), display=False)
figures = plots.saved_figures()

# %%
glue("n_figures", len(figures), display=False)
glue(
    "landing_gallery",
    HTML(
        plots.gallery_html(figures, href=lambda page: f"executed/{page}.html")
        if len(figures)
        else "<p>No page has saved a figure yet.</p>"
    ),
    display=False,
)

# %% [markdown]
# ## Every claim

# %%
for paper, rows in led.groupby("paper", sort=False):
    display(Markdown(f"### {paper}\n\n{citation(paper)}"))
    view = rows.assign(
        ours=rows.ours.round(3),
        ci=[
            "" if pd.isna(lo) else f"[{lo:.2f}, {hi:.2f}]"
            for lo, hi in zip(rows.ci_low, rows.ci_high)
        ],
    )
    display(view[["id", "where", "value", "unit", "ours", "ci", "verdict"]]
            .rename(columns={"value": "published"}).astype(object).fillna("").set_index("id"))
    measured = rows.dropna(subset=["ours"]).drop_duplicates(["page", "our_data"])
    if len(measured):
        display(
            Markdown(
                "Measured by: "
                + "; ".join(f"`{p}` on {d}" for p, d in zip(measured.page, measured.our_data))
            )
        )

# %% [markdown]
# ## Exercises

# %%
from alignlib.claims import Measurement, published, verdict

# Exercise 1: the within-CI rule applied to the DINA mean top-1 that the results page measured.
head = led[(led.id == HEADLINES["DINA"])].dropna(subset=["ours"])
if len(head) and pd.notna(head.ci_low.iloc[0]):
    h = head.iloc[0]
    as_if = verdict(
        "within_ci", h.value, Measurement(h.id, h.ours, h.ci_low, h.ci_high, chance=h.chance)
    )
    glue(
        "ex_rule_text",
        Markdown(
            f"our mean top-1 is {h.ours:.2f} % with 95 % CI [{h.ci_low:.2f}, {h.ci_high:.2f}] "
            f"(chance {h.chance:.2f} %), the paper's {h.value:.2f} %: the `within_ci` rule "
            f"would say **{as_if}**"
        ),
        display=False,
    )
else:
    glue(
        "ex_rule_text",
        Markdown("this build has no DINA mean top-1 with a CI yet (run `dina/results`)"),
        display=False,
    )

# Exercise 2: recompute the paper's Table 1 means from its rows.
t1 = published("dina.table1.")
t1 = t1.assign(**{k: t1.key.str.extract(rf"{k}=([^,]+)")[0] for k in ("model", "mouse", "k")})
per_mouse = t1[t1.mouse != "mean"].groupby(["model", "k"]).value.mean()
printed = t1[t1.mouse == "mean"].set_index(["model", "k"]).value
check = pd.DataFrame({"mean of the four mice": per_mouse, "printed mean": printed}).assign(
    difference=lambda d: d["mean of the four mice"] - d["printed mean"])
worst = check.difference.abs().idxmax()
glue("ex_t1_model", worst[0], display=False)
glue("ex_t1_k", worst[1], display=False)
glue("ex_t1_rows_mean", float(check.loc[worst, "mean of the four mice"]), display=False)
glue("ex_t1_printed", float(check.loc[worst, "printed mean"]), display=False)
glue("ex_t1_n_off", int((check.difference.abs() > 0.01).sum()), display=False)

# Exercise 3: where the unmeasured claims are.
waiting = led[led.verdict == "not measured yet"].chapter.value_counts()
glue("ex_waiting_chapter", str(waiting.index[0]) if len(waiting) else "none", display=False)
glue("ex_waiting_n", int(waiting.iloc[0]) if len(waiting) else 0, display=False)
glue("ex_waiting_total", int(waiting.sum()), display=False)
check.round(3)

# %% [markdown]
# ```{exercise}
# :label: claims-ex-rule
# The DINA results are shown "not comparable on this data". Apply the `within_ci` rule to the mean top-1
# anyway (`alignlib.claims.verdict`). What would it say, and why would that verdict be misleading here?
# ```
#
# ```{solution} claims-ex-rule
# :class: dropdown
# Computed above: {glue:md}`ex_rule_text`. The verdict compares numbers measured on different data (the
# twin and the quick profile's smaller test set, so chance itself differs from the paper's 280-way
# retrieval); agreement or disagreement would say nothing about the paper. This is why pages register such
# measurements with the `not_comparable` rule.
# ```
#
# ```{exercise}
# :label: claims-ex-means
# Recompute the "mean" rows of the paper's Table 1 from its per-mouse rows (`alignlib.claims.published("dina.table1.")`).
# Which printed mean disagrees most with its rows?
# ```
#
# ```{solution} claims-ex-means
# :class: dropdown
# The table above: {glue:text}`ex_t1_n_off` printed means differ from the mean of their four mice by more
# than 0.01; the largest gap is {glue:text}`ex_t1_model` top-{glue:text}`ex_t1_k`, printed
# {glue:text}`ex_t1_printed:.2f` against {glue:text}`ex_t1_rows_mean:.3f` from the rows. The ledger keeps the
# numbers as printed (published.yml notes the inconsistency); a replication should say which it compares to.
# ```
#
# ```{exercise}
# :label: claims-ex-waiting
# Which chapter has the most claims that no page has measured yet? Run that chapter's pages
# (`alignlib run <chapter>/<page>`) and then this page again (`alignlib run claims/ledger`): what changes?
# ```
#
# ```{solution} claims-ex-waiting
# :class: dropdown
# In this build {glue:text}`ex_waiting_total` claims are not measured yet, {glue:text}`ex_waiting_n` of
# them in the chapter {glue:text}`ex_waiting_chapter`. A page registers its measurements
# (`alignlib.claims.record`) when it runs, so re-running the ledger afterwards moves those claims to a
# verdict (or to "not comparable on this data" when the chapter runs on a stand-in for the paper's data).
# ```
