"""A gate decision as JUnit XML, so CI systems show each rule as a test case."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from policies.gate import GateDecision


def junit_xml(decision: GateDecision, *, model: str, version: str) -> str:
    failures = sum(1 for r in decision.results if r.blocking)
    skipped = sum(1 for r in decision.results if r.status in ("warned", "insufficient") and not r.blocking)
    suite = ET.Element("testsuite", name=f"govern gate {model} {version} ({decision.policy_name} "
                                         f"v{decision.policy_version})",
                       tests=str(len(decision.results)), failures=str(failures), errors="0", skipped=str(skipped))
    for result in decision.results:
        case = ET.SubElement(suite, "testcase", classname=f"govern.{decision.policy_name}", name=result.rule_id)
        if result.blocking:
            ET.SubElement(case, "failure", message=result.reason, type=result.status).text = result.reason
        elif result.status in ("warned", "insufficient"):
            ET.SubElement(case, "skipped", message=f"{result.status}: {result.reason}")
        ET.SubElement(case, "system-out").text = result.reason
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(_wrap(suite), encoding="unicode") + "\n"


def _wrap(suite: ET.Element) -> ET.Element:
    root = ET.Element("testsuites", name="govern", tests=suite.get("tests"), failures=suite.get("failures"))
    root.append(suite)
    return root
