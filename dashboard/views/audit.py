"""The audit log: chain status, events filtered by model, actor, action and time, and a verified export."""

import io
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError
from governance.service import verify_audit_export
from governance.service.times import parse_since, parse_until

st.title("Audit log")
home, actor = state.home(), state.user()
service = state.service()
try:
    report = data.chain_report(home, actor)
except GovernError as exc:
    st.error(state.plain(str(exc)))
    st.stop()
if report.ok:
    st.success(f"Chain intact: {report.event_count} events, head {report.head_hash[:16]}…")
else:
    st.error(f"Chain BROKEN at seq {report.broken_seq}: {report.problem}")

with st.form("audit.filters"):
    left, middle, right = st.columns(3)
    model = left.selectbox("Model", ["(all)", *[m.name for m in data.models(home, actor)]], key="audit.model")
    who = middle.text_input("Actor", key="audit.actor", placeholder="any user")
    action = right.text_input("Action or prefix", key="audit.action", placeholder="e.g. review or gate.decide")
    days = st.date_input("Between (UTC dates)", value=(), key="audit.days")
    st.form_submit_button("Filter")
since = until = None
if isinstance(days, (tuple, list)) and days:
    since, until = parse_since(days[0]), parse_until(days[-1])  # whole UTC days
try:
    matched, events = data.audit_events(home, actor, None if model == "(all)" else model, who.strip() or None,
                                        action.strip() or None, since, until)
except GovernError as exc:
    st.error(state.plain(str(exc)))
    st.stop()
st.caption(f"{matched} event(s) match" + (f"; the newest {len(events)} are shown" if matched > len(events) else ""))
st.dataframe(pd.DataFrame([{"seq": e.seq, "time (UTC)": e.ts, "actor": e.actor or "", "action": e.action,
                            "entity": e.entity, "payload": e.payload} for e in events]),
             hide_index=True, width="stretch")

st.subheader("Export for an audit")
fmt = st.selectbox("Export format", ["jsonl", "csv", "parquet"], key="audit.format")
if st.button("Prepare export", key="audit.export"):
    with st.status("Exporting the whole log…", expanded=True) as progress, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit-export"
        manifest = service.export_audit(out=out, fmt=fmt)
        st.write(f"Wrote {manifest['row_count']} events and the signed manifest.")
        progress.update(label="Verifying the export offline…")
        verified = verify_audit_export(out, expected_public_key=service.public_key())
        st.write("Verified: " + ("yes" if verified.ok else "NO — " + "; ".join(verified.problems)))
        progress.update(label="Packing the files…")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(out.iterdir()):
                archive.write(path, path.name)
        progress.update(label="Export ready", state="complete" if verified.ok else "error")
    st.session_state["govern.audit_zip"] = buffer.getvalue()
    st.session_state["govern.audit_verified"] = verified.ok
    state.changed()
if st.session_state.get("govern.audit_zip"):
    st.write("Export verified offline: " + ("yes" if st.session_state.get("govern.audit_verified") else "NO"))
    st.download_button("Download export (zip)", st.session_state["govern.audit_zip"],
                       file_name="govern-audit-export.zip", key="audit.download")
