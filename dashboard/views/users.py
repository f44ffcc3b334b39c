"""Users and roles (admins)."""

import pandas as pd
import streamlit as st

from dashboard import state
from governance.errors import GovernError
from governance.roles import Role

st.title("Users")
state.show_flash()
service = state.service()
st.dataframe(pd.DataFrame([u.to_dict() for u in service.list_users()]), hide_index=True, width="stretch")
with st.form("users.add"):
    name = st.text_input("Name")
    role = st.selectbox("Role", [r.value for r in Role])
    password = st.text_input("Password (8+ characters)", type="password")
    if st.form_submit_button("Add user"):
        try:
            service.add_user(name=name, role=role, password=password or None)
            state.flash(f"Added {name}.")
            st.rerun()
        except GovernError as exc:
            st.error(state.plain(str(exc)))
