"""The audit log: chain status, events filtered by model, actor, action and time, a verified export, and the
auditor's dossier of any version (its evidence, every figure cited, independently recomputed)."""

import io
import re
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

st.subheader("Auditor's dossier")
st.caption("A document of one version generated only from stored evidence: every figure cites the audit event it "
           "comes from, the log's head is embedded and signed. Check it offline against an export with "
           "`govern audit verify EXPORT --key KEY --report FOLDER`.")
models = [m.name for m in data.models(home, actor)]
if not models:
    st.info("No model is registered yet.")
    st.stop()
left, middle, right = st.columns(3)
dossier_model = left.selectbox("Model", models, key="audit.dossier_model")
dossier_versions = [v.version for v in data.versions(home, actor, dossier_model)]
if not dossier_versions:
    st.info(f"{dossier_model} has no versions yet.")
    st.stop()
dossier_version = middle.selectbox("Version", list(reversed(dossier_versions)), key="audit.dossier_version")
kind = right.selectbox("Document", ["model-card", "annex-iv", "validation", "bias-audit"], key="audit.dossier_kind",
                       format_func={"model-card": "Model card", "annex-iv": "EU AI Act Annex IV",
                                    "validation": "Validation report (SR 26-2)",
                                    "bias-audit": "Bias audit (NYC LL144)"}.get)
try:
    recomputed = service.latest_recomputation(model=dossier_model, version=dossier_version)
except GovernError as exc:
    st.error(state.plain(str(exc)))
    st.stop()
if recomputed is None:
    st.write("Not independently recomputed yet.")
elif recomputed["agrees"]:
    st.success(f"Independently recomputed: agrees to {recomputed['tolerance']:g} (audit event seq {recomputed['seq']}, "
               f"{recomputed['ts']})")
else:
    st.error(f"Independently recomputed: {recomputed.get('mismatch_count', 0)} records differ (audit event seq "
             f"{recomputed['seq']}): " + state.plain(", ".join(
                 f"{m['family']}.{m['metric']}" for m in recomputed["mismatches"][:5])))
first, second = st.columns(2)
if first.button("Recompute independently", key="audit.recompute",
                help="scikit-learn, torchmetrics, fairlearn and Evidently recompute the stored evaluation; logged"):
    try:
        with st.spinner("Recomputing with the reference libraries…"):
            service.recompute(model=dossier_model, version=dossier_version)
        state.changed()
        st.rerun()
    except GovernError as exc:
        st.error(state.plain(str(exc)))
if second.button("Generate dossier", key="audit.dossier"):
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{dossier_model}-{dossier_version}-{kind}"
            evidence = service.generate_report(model=dossier_model, version=dossier_version, kind=kind, out=out)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for path in sorted(p for p in out.rglob("*") if p.is_file()):
                    archive.write(path, f"{out.name}/{path.relative_to(out).as_posix()}")
            st.session_state["govern.dossier_md"] = (out / f"{kind}.md").read_text(encoding="utf-8")
        st.session_state["govern.dossier_zip"] = buffer.getvalue()
        st.session_state["govern.dossier_name"] = f"{out.name}.zip"
        state.changed()
    except GovernError as exc:
        st.error(state.plain(str(exc)))
if st.session_state.get("govern.dossier_zip"):
    st.download_button("Download dossier (zip: HTML, Markdown, evidence.json)", st.session_state["govern.dossier_zip"],
                       file_name=st.session_state["govern.dossier_name"], key="audit.dossier_download")
    with st.expander("Read the dossier here", expanded=False):
        # The Markdown's user text is escaped by its template; its chart links point into the zip, not here.
        st.markdown(re.sub(r"^!\[[^\n]*\]\(charts/[^)\n]*\)$", "", st.session_state["govern.dossier_md"], flags=re.M))
