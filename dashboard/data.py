"""Cached reads through the service API (cleared after every write); pages render these."""

from __future__ import annotations

import streamlit as st

from governance.service import Service


def _service(home: str, actor: str) -> Service:
    """The signed-in user's service, proven by their dashboard session. Cached results are keyed by the
    user, so a session only ever sees what its own user may see."""
    return Service.open(home=home, actor=actor, token=st.session_state.get("govern.token"), require_proof=True)


@st.cache_data(ttl=30, show_spinner=False)
def models(home: str, actor: str):
    return _service(home, actor).list_models()


@st.cache_data(ttl=30, show_spinner=False)
def versions(home: str, actor: str, model: str):
    return _service(home, actor).list_versions(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def production(home: str, actor: str, model: str):
    return _service(home, actor).production_version(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def latest_gate(home: str, actor: str, model: str, version: str):
    return _service(home, actor).latest_gate(model=model, version=version)


@st.cache_data(ttl=30, show_spinner=False)
def evaluation(home: str, actor: str, model: str, version: str):
    return _service(home, actor).latest_evaluation(model=model, version=version)


@st.cache_data(ttl=30, show_spinner=False)
def review_items(home: str, actor: str, status: str | None):
    return _service(home, actor).list_review_items(status=status)


@st.cache_data(ttl=30, show_spinner=False)
def jobs(home: str, actor: str):
    return _service(home, actor).list_jobs()


@st.cache_data(ttl=30, show_spinner=False)
def history(home: str, actor: str, model: str):
    return _service(home, actor).history(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def signoffs(home: str, actor: str, model: str, version: str):
    return _service(home, actor).signoffs(model=model, version=version)


def busiest(home: str, actor: str, names: list[str]) -> int:
    """Index of the model with the most versions: the one people most likely came to look at."""
    counts = [len(versions(home, actor, name)) for name in names]
    return counts.index(max(counts))


def pick_version(page: str) -> tuple[str, str]:
    """Model and version selectboxes (keys `{page}.model`, `{page}.version`); stops the page when
    there is nothing to pick."""
    from dashboard import state

    home, actor = state.home(), state.user()
    names = [m.name for m in models(home, actor)]
    if not names:
        st.info("No models yet. Register one with `govern model register` or `govern train`.")
        st.stop()
    model = st.selectbox("Model", names, index=busiest(home, actor, names), key=f"{page}.model")
    found = [v.version for v in versions(home, actor, model)]
    if not found:
        st.info("This model has no versions yet.")
        st.stop()
    return model, st.selectbox("Version", found, index=len(found) - 1, key=f"{page}.version")


@st.cache_data(ttl=30, show_spinner=False)
def trend(home: str, actor: str, model: str):
    return _service(home, actor).metric_trend(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def drift_timeline(home: str, actor: str, model: str, version: str):
    return _service(home, actor).drift_timeline(model=model, version=version)


@st.cache_data(ttl=30, show_spinner=False)
def compare(home: str, actor: str, model: str, a: str, b: str):
    return _service(home, actor).compare_versions(model=model, a=a, b=b)


@st.cache_data(ttl=30, show_spinner=False)
def audit_events(home: str, actor: str, model: str | None, who: str | None, action: str | None, since, until):
    return _service(home, actor).audit_events(model=model, actor=who, action=action, since=since,
                                                             until=until, limit=1000)


@st.cache_data(ttl=30, show_spinner=False)
def chain_report(home: str, actor: str):
    return _service(home, actor).verify_audit()


@st.cache_data(ttl=300, show_spinner=False)
def gate_policy_text(home: str, actor: str, gate_id: str):
    return _service(home, actor).gate_policy_text(gate_id=gate_id)


@st.cache_data(ttl=30, show_spinner=False)
def lineage(home: str, actor: str, model: str, version: str):
    return _service(home, actor).lineage(model=model, version=version)


@st.cache_data(ttl=10, show_spinner=False)
def job_overview(home: str, actor: str):
    return _service(home, actor).job_overview()


@st.cache_data(ttl=30, show_spinner=False)
def job(home: str, actor: str, job_id: str):
    return _service(home, actor).show_job(job_id=job_id)


@st.cache_data(ttl=30, show_spinner=False)
def agreement(home: str, actor: str, model: str | None):
    return _service(home, actor).agreement(model=model)


@st.cache_data(ttl=30, show_spinner=False)
def current_releases(home: str, actor: str):
    return {m.model: m for m in _service(home, actor).current_releases()}


@st.cache_data(ttl=30, show_spinner=False)
def witness(home: str, actor: str):
    return _service(home, actor).witness_status()


@st.cache_data(ttl=15, show_spinner=False)
def readiness(home: str, actor: str):
    return _service(home, actor).readiness()


@st.cache_data(ttl=30, show_spinner=False)
def judged_values(home: str, actor: str, model: str, version: str):
    return _service(home, actor).judged_values(model=model, version=version)
