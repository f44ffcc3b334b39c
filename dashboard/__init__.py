"""The Streamlit dashboard: rendering only, over the governance service API."""
