"""The gate's results as JUnit XML (`fiswatch lab exec --junit FILE`): one testcase per expectation
and per scheduled failover, a <failure> for each one that failed. Pure."""
from typing import Sequence, Tuple


def junit_xml(results: Sequence[Tuple[str, bool, str]], command: str, seconds: float) -> str:
    from xml.sax.saxutils import escape, quoteattr

    failures = sum(1 for _, ok, _ in results if not ok)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<testsuite name=%s tests="%d" failures="%d" time="%.3f">' % (
               quoteattr("fiswatch lab exec: %s" % command), len(results), failures, seconds)]
    for name, ok, message in results:
        out.append('  <testcase classname="fiswatch.failover" name=%s>' % quoteattr(name))
        if ok:
            out.append('    <system-out>%s</system-out>' % escape(message))
        else:
            out.append('    <failure message=%s>%s</failure>' % (quoteattr(message), escape(message)))
        out.append('  </testcase>')
    out.append('</testsuite>')
    return "\n".join(out) + "\n"
