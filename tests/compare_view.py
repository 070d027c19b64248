"""Helpers the Compare page tests share: reading the table, which sits in its own tab."""

from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from efficiency.ui import views


def compare_table(at: AppTest) -> pd.DataFrame:
    """Open Compare's Table tab (only the open tab is sent) and return the table; the tab stays open."""
    at.session_state[views.CHART_TAB_KEY] = views.TABLE_TAB
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("Compare"), "after st.switch_page, AppTest reruns the page it switched from"
    (table,) = at.dataframe
    return table.value
