"""Cached reads through the service API (cleared after every write); pages render these."""

from __future__ import annotations

import streamlit as st

from governance.service import Service


@st.cache_data(ttl=30, show_spinner=False)
def models(home: str, actor: str):
    return Service.open(home=home, actor=actor).list_models()


@st.cache_data(ttl=30, show_spinner=False)
def versions(home: str, actor: str, model: str):
    return Service.open(home=home, actor=actor).list_versions(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def production(home: str, actor: str, model: str):
    return Service.open(home=home, actor=actor).production_version(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def latest_gate(home: str, actor: str, model: str, version: str):
    return Service.open(home=home, actor=actor).latest_gate(model=model, version=version)


@st.cache_data(ttl=30, show_spinner=False)
def evaluation(home: str, actor: str, model: str, version: str):
    return Service.open(home=home, actor=actor).latest_evaluation(model=model, version=version)


@st.cache_data(ttl=30, show_spinner=False)
def review_items(home: str, actor: str, status: str | None):
    return Service.open(home=home, actor=actor).list_review_items(status=status)


@st.cache_data(ttl=30, show_spinner=False)
def jobs(home: str, actor: str):
    return Service.open(home=home, actor=actor).list_jobs()


@st.cache_data(ttl=30, show_spinner=False)
def history(home: str, actor: str, model: str):
    return Service.open(home=home, actor=actor).history(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def signoffs(home: str, actor: str, model: str, version: str):
    return Service.open(home=home, actor=actor).signoffs(model=model, version=version)
