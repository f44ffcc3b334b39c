"""The Audit page offers the auditor's dossier: an auditor recomputes a version independently, generates its
dossier, reads it on the page and downloads it; the download verifies against an export of the log."""

from __future__ import annotations

import io
import shutil
import zipfile

from streamlit.testing.v1 import AppTest

from governance.service import Service, verify_audit_export
from tests.support.paths import APP


def test_an_auditor_recomputes_and_downloads_a_verifiable_dossier(demo_store, tmp_path, monkeypatch):
    source, summary, _ = demo_store
    home = tmp_path / "home"
    shutil.copytree(source, home)
    monkeypatch.setenv("GOVERN_HOME", str(home))
    session = Service.open(home=home).sign_in(name="audrey", password=summary["password"], client="test")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["govern.user"], at.session_state["govern.role"] = "audrey", "auditor"
    at.session_state["govern.token"] = session.secret
    at.run()
    at.switch_page("views/audit.py").run()
    assert not at.exception
    at.selectbox(key="audit.dossier_model").set_value("income").run()
    at.selectbox(key="audit.dossier_version").set_value("2").run()
    at.selectbox(key="audit.dossier_kind").set_value("validation").run()
    assert any(m.value == "Not independently recomputed yet." for m in at.markdown)
    at.button(key="audit.recompute").click().run()
    assert not at.exception
    assert any(s.value.startswith("Independently recomputed: agrees to 1e-06") for s in at.success)
    at.button(key="audit.dossier").click().run()
    assert not at.exception
    assert at.session_state["govern.dossier_name"] == "income-2-validation.zip"
    assert "## Effective challenge: independent recomputation and human review" in at.session_state["govern.dossier_md"]
    shown = [m.value for m in at.markdown if "## Effective challenge" in m.value]  # the dossier, on the page
    assert len(shown) == 1 and "](charts/" not in shown[0]  # its chart links point into the download

    folder = tmp_path / "download"
    with zipfile.ZipFile(io.BytesIO(at.session_state["govern.dossier_zip"])) as archive:
        archive.extractall(folder)
    report = folder / "income-2-validation"
    assert sorted(p.name for p in report.iterdir()) == ["charts", "evidence.json", "validation.html", "validation.md"]
    assert sorted(p.suffix for p in (report / "charts").iterdir()) == [".png", ".png"]  # sex, race
    auditor = Service.open(home=home, actor="audrey")
    auditor.export_audit(out=tmp_path / "export")
    verdict = verify_audit_export(tmp_path / "export", expected_public_key=auditor.public_key(), report=report)
    assert verdict.ok, verdict.problems
