"""`--read NAME`: which endpoints' probes read instead of writing, and the lab's read endpoints.

An endpoint named by `--read` gets read probes (fiswatch.engine.readround): each round
SELECTs the newest rows, nothing is written. NAME is one of the run's endpoints, or, with
`--lab` (and in the demo), one of the lab's read endpoints added for it:

    aurora-ro            the Aurora reader endpoint (a random reader per lookup, TTL 5 s)
    maz-ro               the Multi-AZ DB cluster's reader endpoint (`lab up --multi-az-cluster`)
    instance-N, maz-instance-N
                         one instance by its own name (the lab's instances, `fiswatch lab status`)

A read endpoint's `writer` is the endpoint whose writes it should see: the cluster's writer
endpoint in the lab, `X` for a `--read X-ro` when the run has an endpoint X; it sets the
column's lag (rows behind) and pairs the read gaps with that cluster's failovers in the report.
"""
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence

from fiswatch.exits import UsageError
from fiswatch.model import Endpoint

LAB_PREFIX = "fiswatch-lab-"


def lab_read_endpoints(info: Any) -> Dict[str, Endpoint]:
    """The read endpoints a running lab offers beside its writer endpoints, by NAME (see above)."""
    by_name = {e.name: e for e in info.endpoints}
    out: Dict[str, Endpoint] = {}
    for name, host, cluster in (("aurora-ro", info.reader_endpoint, "aurora"),
                                ("maz-ro", info.maz_reader_endpoint, "maz")):
        if host and cluster in by_name:
            out[name] = replace(by_name[cluster], name=name, host=host, reads=True, writer=cluster, host_pattern=None)
    for inst in info.instances:
        if inst.dns_name and inst.cluster in by_name:
            short = inst.name[len(LAB_PREFIX):] if inst.name.startswith(LAB_PREFIX) else inst.name
            out[short] = replace(by_name[inst.cluster], name=short, host=inst.dns_name, reads=True,
                                 writer=inst.cluster, host_pattern=None)
    return out


def with_reads(endpoints: Sequence[Endpoint], names: Sequence[str], lab: Optional[Any] = None) -> List[Endpoint]:
    """`endpoints` with those named in `names` reading, and the lab's read endpoints named there added.

    UsageError (one line, exit 2) for a NAME that is neither.

    >>> ep = Endpoint("db", "h"), Endpoint("db-ro", "h2")
    >>> [(e.name, e.reads, e.writer) for e in with_reads(ep, ["db-ro"])]
    [('db', False, None), ('db-ro', True, 'db')]
    """
    out = list(endpoints)
    offered = lab_read_endpoints(lab) if lab is not None else {}
    known = {e.name for e in out}
    for name in dict.fromkeys(names):
        if name in known:
            i = next(i for i, e in enumerate(out) if e.name == name)
            writer = name[:-3] if name.endswith("-ro") and name[:-3] in known else None
            out[i] = replace(out[i], reads=True, writer=out[i].writer or writer)
        elif name in offered:
            out.append(offered[name])
            known.add(name)
        else:
            choices = sorted(known) + sorted(offered)
            raise UsageError("--read %s: no endpoint named %s (choose from: %s)"
                             % (name, name, ", ".join(choices) or "none"))
    return out


def surviving_reader(info: Any) -> Optional[str]:
    """The demo's read column: an Aurora reader a writer failover never promotes (the lab promotes
    its first reader; `lab up --readers N` adds readers that only follow the new writer), by its
    NAME for `--read`; the reader endpoint `aurora-ro` when the lab has one reader only."""
    extra = [i for i in info.instances if i.cluster == "aurora" and i.dns_name
             and not i.name.endswith(("-instance-1", "-instance-2"))]
    if not extra:
        return "aurora-ro" if info.reader_endpoint else None
    name = sorted(extra, key=lambda i: i.name)[-1].name
    return name[len(LAB_PREFIX):] if name.startswith(LAB_PREFIX) else name


def scoped_backends(backends: Sequence[str], write_endpoints: Sequence[str]) -> List[str]:
    """Backends that ran on every endpoint limited to the writing ones (a read column is added on its own).

    >>> scoped_backends(["pymysql", "aurora/aws-wrapper"], ["aurora", "rds"])
    ['aurora+rds/pymysql', 'aurora/aws-wrapper']
    """
    where = "+".join(write_endpoints)
    return [b if "/" in b.partition(":")[0] else "%s/%s" % (where, b) for b in backends]
