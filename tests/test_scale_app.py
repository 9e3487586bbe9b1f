"""The app on a generated store of 100,000 test pins and 10,000 users (AppTest).

The store is written once for the module by :func:`pinterest_mm.data.synthetic_store.write_test_store`
(the test split of a million-pin dataset, 8 synthetic models; validation cut to 20,000 pins to keep
the module fast). Every page must run and show its main content; the drill-down, the Users table
and the galleries must be paginated, showing at most one page of pins or users.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pinterest_mm.data.synthetic import CATEGORIES
from pinterest_mm.data.synthetic_store import TestStoreConfig, write_test_store

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

REPO = Path(__file__).resolve().parents[1]
N_TEST = 100_000
CELL_PAGE, USERS_PAGE, PINS_PAGE = 12, 25, 16


@pytest.fixture(scope="module")
def big_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("big") / "home"
    write_test_store(root, TestStoreConfig(n_test=N_TEST, n_val=20_000, n_train=2_900, n_users=10_000))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PINTEREST_MM_HOME", str(root))
        yield root


def run(script: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / script), default_timeout=300)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts).replace("\\", "")


def qp(at: AppTest, key: str):
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v


def pin_cards(at: AppTest) -> list[str]:
    """The pin ids of the pin cards on the page (each card's title line: ``**category** · pin_id``)."""
    return [m.value.replace("\\", "").split(" · ")[-1] for m in at.markdown
            if m.value.startswith("**") and " · " in m.value]


@pytest.mark.parametrize("script,main", [
    ("app.py", "Pages"),
    ("pages/1_Overview.py", "Import report"),
    ("pages/2_Models.py", "Top-k accuracy by family"),
    ("pages/3_Fusion_lab.py", "Pins in a cell"),
    ("pages/5_Users.py", "Every user"),
    ("pages/6_Predict.py", "Upload an image"),
    ("pages/7_Search.py", "No joint space"),
])
def test_every_page_runs_at_100k(big_home, script, main):
    at = run(script)
    shown = texts(at) + "\n".join(s.value for s in at.subheader)
    assert main in shown
    if script == "app.py":
        assert any(m.label == "Pins" and m.value == f"{N_TEST + 20_000 + 2_900:,}" for m in at.metric)


@pytest.mark.slow
def test_compare_page_at_100k(big_home):
    at = run("pages/4_Compare.py")
    assert at.get("plotly_chart")


def test_drill_down_is_paginated_and_its_cell_in_the_url(big_home):
    at = run("pages/3_Fusion_lab.py", {"cell": "0-0"})  # the diagonal: tens of thousands of pins
    assert at.selectbox(key="w_cell_true").value == CATEGORIES[0]
    assert at.selectbox(key="w_cell_pred").value == CATEGORIES[0]
    assert qp(at, "cell") == "0-0"
    pager = next(n for n in at.number_input if n.label.startswith("Page (of"))
    first = pin_cards(at)
    assert 0 < len(first) <= CELL_PAGE
    pager.set_value(3).run()
    third = pin_cards(at)
    assert 0 < len(third) <= CELL_PAGE and not set(first) & set(third)
    # another model selection makes the cell stale: back to the first wrong pin's cell
    box = next(m for m in at.multiselect if m.label.startswith("Models fused"))
    box.set_value(box.value[:2]).run()
    assert not at.exception
    true, pred = at.selectbox(key="w_cell_true").value, at.selectbox(key="w_cell_pred").value
    assert true != pred
    assert qp(at, "cell") == f"{CATEGORIES.index(true)}-{CATEGORIES.index(pred)}"


def test_a_bad_cell_link_falls_back(big_home):
    at = run("pages/3_Fusion_lab.py", {"cell": "99-x"})
    assert at.selectbox(key="w_cell_true").value != at.selectbox(key="w_cell_pred").value


def test_users_page_pages_10000_users_and_keeps_the_user_in_the_url(big_home):
    at = run("pages/5_Users.py")
    assert next(n for n in at.number_input if n.label.startswith("Users with at least")).value == 5
    def users_table(app):  # the paged table (the best and worst 10 beside it, top-K interests after it)
        return max((d.value for d in app.dataframe if "n_pins" in d.value.columns), key=len)

    table = users_table(at)
    assert len(table) == USERS_PAGE and (table["n_pins"] >= 5).all()
    n_users = int(next(m for m in at.metric if m.label.startswith("Users with")).value.replace(",", ""))
    assert 1_000 < n_users < 10_000  # the filter leaves out users with few pins
    pager = next(n for n in at.number_input if n.label.startswith("Page (of"))
    assert pager.label == f"Page (of {-(-n_users // USERS_PAGE):,})"
    pager.set_value(2).run()
    second = users_table(at)
    assert len(second) == USERS_PAGE and not set(second["user_id"]) & set(table["user_id"])
    user = second["user_id"].iloc[3]
    at.selectbox(key="w_user").set_value(user).run()
    assert qp(at, "user") == user
    assert len(pin_cards(at)) <= PINS_PAGE
    # the link reopens that user
    again = run("pages/5_Users.py", {"user": user})
    assert again.selectbox(key="w_user").value == user
    assert f"{user}'s pins" in texts(again)


def test_users_link_to_an_unknown_user_is_dropped(big_home):
    at = run("pages/5_Users.py", {"user": "no-such-user"})
    assert "no-such-user" in texts(at) and at.selectbox(key="w_user").value != "no-such-user"


def test_a_page_keeps_only_its_own_keys_in_the_url(big_home):
    at = run("pages/2_Models.py", {"user": "user00001", "cell": "1-2", "split": "val"})
    assert qp(at, "split") == "val" and qp(at, "user") is None and qp(at, "cell") is None
