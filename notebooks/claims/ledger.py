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
from IPython.display import Markdown, display
from myst_nb import glue

from alignlib.claims import RULES, ledger
from alignlib.claims.ledger import citation
from alignlib.report import save_table, show_provenance

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
summary = led.pivot_table(index="paper", columns="verdict", values="id", aggfunc="count", fill_value=0)
for verdict, n in led.verdict.value_counts().items():
    glue(f"n_{verdict.replace(' ', '_')}", int(n), display=False)
glue("n_claims", len(led), display=False)
summary

# %% [markdown]
# {glue:text}`n_claims` published numbers in all. Where a chapter runs on a stand-in for the paper's data
# (the ground-truth twin instead of the Stringer recordings, public retina cells instead of a private
# recording), numbers are shown side by side as "not comparable on this data": a verdict that compared them
# would be meaningless. Qualitative claims (e.g. "retrieval far above chance") get a verdict only when a
# page measures them on the paper's kind of data; on a stand-in they are shown side by side too.

# %% [markdown]
# ## Every claim

# %%
for paper, rows in led.groupby("paper", sort=False):
    display(Markdown(f"### {paper}\n\n{citation(paper)}"))
    view = rows.assign(ours=rows.ours.round(3), ci=[
        "" if pd.isna(lo) else f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(rows.ci_low, rows.ci_high)])
    display(view[["id", "where", "value", "unit", "ours", "ci", "verdict"]]
            .rename(columns={"value": "published"}).astype(object).fillna("").set_index("id"))
    measured = rows.dropna(subset=["ours"]).drop_duplicates(["page", "our_data"])
    if len(measured):
        display(Markdown("Measured by: " + "; ".join(f"`{p}` on {d}" for p, d in zip(measured.page, measured.our_data))))
