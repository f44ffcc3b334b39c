"""The audit log: chain status, and a verified export to download."""

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from dashboard import state
from governance.errors import GovernError
from governance.service import verify_audit_export

st.title("Audit log")
service = state.service()
try:
    report = service.verify_audit()
except GovernError as exc:
    st.error(str(exc))
    st.stop()
if report.ok:
    st.success(f"Chain intact: {report.event_count} events, head {report.head_hash[:16]}…")
else:
    st.error(f"Chain BROKEN at seq {report.broken_seq}: {report.problem}")
fmt = st.selectbox("Export format", ["jsonl", "csv", "parquet"], key="audit.format")
if st.button("Prepare export", key="audit.export"):
    with st.spinner("Exporting and verifying…"), tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit-export"
        service.export_audit(out=out, fmt=fmt)
        verified = verify_audit_export(out)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(out.iterdir()):
                archive.write(path, path.name)
    st.session_state["govern.audit_zip"] = buffer.getvalue()
    st.session_state["govern.audit_verified"] = verified.ok
    state.changed()
if st.session_state.get("govern.audit_zip"):
    st.write("Export verified offline: " + ("yes" if st.session_state.get("govern.audit_verified") else "NO"))
    st.download_button("Download export (zip)", st.session_state["govern.audit_zip"], file_name="govern-audit-export.zip",
                       key="audit.download")
