"""The workshop's two FIS experiments, created and started from the terminal.

Templates are exactly the workshop's (Name tag, description, role, one target by resource
ARN with selection ALL, one action, no stop condition) and are found again by their Name
tag, so `create` is idempotent. Runs are tagged `<template name>Run<N>`, numbered on
from the runs that already exist.
"""
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from fiswatch import events as E
from fiswatch.aws.session import AwsError, client, explain
from fiswatch.model import Event

ROLE_NAME = "FisWorkshopServiceRole"
TERMINAL_STATES = ("completed", "stopped", "failed", "cancelled")


@dataclass(frozen=True)
class TemplateSpec:
    """One workshop experiment template, as the workshop's instructions build it."""

    target: str  # aurora | rds
    name: str  # the Name tag
    description: str
    target_name: str
    resource_type: str
    action_name: str
    action_id: str
    action_targets_key: str  # the key FIS uses for the action's target
    parameters: Tuple[Tuple[str, str], ...] = ()
    action_description: Optional[str] = None
    default_secret: str = ""


TEMPLATES: Mapping[str, TemplateSpec] = {
    "aurora": TemplateSpec(
        target="aurora", name="FisWorkshopAurora1", description="FailoverAuroraCluster",
        target_name="FisWorkshopAuroraCluster", resource_type="aws:rds:cluster",
        action_name="FisWorkshopFailoverAuroraCluster", action_id="aws:rds:failover-db-cluster",
        action_targets_key="Clusters", action_description="Failover Aurora Cluster",
        default_secret="FisAuroraSecret"),
    "rds": TemplateSpec(
        target="rds", name="FisWorkshopRds1", description="RebootRDSInstance",
        target_name="FisWorkshopRDSDB", resource_type="aws:rds:db",
        action_name="RDSInstanceReboot", action_id="aws:rds:reboot-db-instances",
        action_targets_key="DBInstances", parameters=(("forceFailover", "true"),),
        default_secret="FisMysqlSecret"),
}


def spec_for(target: str) -> TemplateSpec:
    try:
        return TEMPLATES[target]
    except KeyError:
        raise AwsError("unknown experiment target %r: use aurora or rds" % target)


# ---------------------------------------------------------------- pure helpers

def template_request(spec: TemplateSpec, resource_arn: str, role_arn: str) -> Dict[str, Any]:
    """The create_experiment_template arguments (botocore fills clientToken)."""
    action: Dict[str, Any] = {
        "actionId": spec.action_id,
        "targets": {spec.action_targets_key: spec.target_name},
    }
    if spec.action_description:
        action["description"] = spec.action_description
    if spec.parameters:
        action["parameters"] = dict(spec.parameters)
    return {
        "description": spec.description,
        "roleArn": role_arn,
        "targets": {spec.target_name: {"resourceType": spec.resource_type, "resourceArns": [resource_arn],
                                       "selectionMode": "ALL"}},
        "actions": {spec.action_name: action},
        # FIS requires the list; source "none" is what the console stores for "no stop condition".
        "stopConditions": [{"source": "none"}],
        "tags": {"Name": spec.name},
    }


def run_number(names: List[str], template_name: str) -> int:
    """The next run number given existing run Name tags.

    >>> run_number(["FisWorkshopAurora1Run1", "FisWorkshopAurora1Run3", "other"], "FisWorkshopAurora1")
    4
    """
    pattern = re.compile(r"^%sRun(\d+)$" % re.escape(template_name))
    numbers = [int(m.group(1)) for m in (pattern.match(n or "") for n in names) if m]
    return max(numbers, default=0) + 1


def state_of(experiment: Mapping[str, Any]) -> Tuple[str, str]:
    state = experiment.get("state") or {}
    return str(state.get("status") or "unknown"), str(state.get("reason") or "")


# ---------------------------------------------------------------- AWS calls

def _call(what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except AwsError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise AwsError("%s: %s" % (what, explain(exc)))


def find_template(fis: Any, spec: TemplateSpec) -> Optional[str]:
    """Id of the template tagged Name=<spec.name>, the newest if several."""
    found: List[Tuple[Any, str]] = []
    paginator = fis.get_paginator("list_experiment_templates")
    for page in _call("listing FIS templates", paginator.paginate):
        for summary in page.get("experimentTemplates") or []:
            if (summary.get("tags") or {}).get("Name") == spec.name:
                found.append((summary.get("creationTime") or 0, summary["id"]))
    if not found:
        return None
    return sorted(found, key=lambda item: str(item[0]))[-1][1]


def resource_arn(session: Any, spec: TemplateSpec, cluster_id: Optional[str] = None,
                 instance_id: Optional[str] = None, secret_id: Optional[str] = None) -> str:
    """ARN of the experiment's target: from the id given, else the workshop secret's ids or host."""
    rds = client(session, "rds")
    if spec.resource_type == "aws:rds:cluster":
        ident = cluster_id or _target_from_secret(session, rds, spec, secret_id, "cluster")
        clusters = _call("finding RDS cluster %r" % ident, rds.describe_db_clusters,
                         DBClusterIdentifier=ident).get("DBClusters") or []
        if not clusters:
            raise AwsError("RDS cluster %r not found: check --cluster-id and --region" % ident)
        return str(clusters[0]["DBClusterArn"])
    ident = instance_id or _target_from_secret(session, rds, spec, secret_id, "instance")
    instances = _call("finding RDS instance %r" % ident, rds.describe_db_instances,
                      DBInstanceIdentifier=ident).get("DBInstances") or []
    if not instances:
        raise AwsError("RDS instance %r not found: check --instance-id and --region" % ident)
    return str(instances[0]["DBInstanceArn"])


def _target_from_secret(session: Any, rds: Any, spec: TemplateSpec, secret_id: Optional[str], kind: str) -> str:
    from fiswatch.aws.secrets import endpoints_from_secrets
    from fiswatch.aws.topology import find_target

    flag = "--cluster-id" if kind == "cluster" else "--instance-id"
    secret_id = secret_id or spec.default_secret
    try:
        endpoint = endpoints_from_secrets([(spec.target, secret_id)], session)[0]
        found_kind, ident = find_target(rds, endpoint)
    except AwsError as exc:
        raise AwsError("cannot tell which %s to target (%s): pass %s" % (kind, exc, flag))
    if found_kind != kind:
        raise AwsError("secret %r points at an RDS %s, not a %s: pass %s" % (secret_id, found_kind, kind, flag))
    return ident


def role_arn_by_name(session: Any, name: str = ROLE_NAME) -> str:
    iam = client(session, "iam")
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except Exception as exc:  # noqa: BLE001
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
        if code == "NoSuchEntity":
            raise AwsError("IAM role %s not found: deploy the workshop stack or pass --role-arn ARN" % name)
        raise AwsError("looking up IAM role %s: %s (or pass --role-arn ARN)" % (name, explain(exc)))


def ensure_template(session: Any, target: str, cluster_id: Optional[str] = None,
                    instance_id: Optional[str] = None, role_arn: Optional[str] = None,
                    secret_id: Optional[str] = None) -> Tuple[str, bool]:
    """(template id, created). An existing template with the workshop's Name tag is reused."""
    spec = spec_for(target)
    fis = client(session, "fis")
    existing = find_template(fis, spec)
    if existing is not None:
        return existing, False
    arn = resource_arn(session, spec, cluster_id, instance_id, secret_id)
    role = role_arn or role_arn_by_name(session)
    created = _call("creating FIS template %s" % spec.name, fis.create_experiment_template,
                    **template_request(spec, arn, role))
    return str(created["experimentTemplate"]["id"]), True


def list_runs(fis: Any, template_id: str) -> List[Mapping[str, Any]]:
    """The experiments started from that template, oldest first."""
    runs: List[Mapping[str, Any]] = []
    paginator = fis.get_paginator("list_experiments")
    for page in _call("listing FIS experiments", paginator.paginate, experimentTemplateId=template_id):
        runs.extend(e for e in page.get("experiments") or [] if e.get("experimentTemplateId") == template_id)
    return sorted(runs, key=lambda e: str(e.get("creationTime") or ""))


def _template_or_fail(fis: Any, spec: TemplateSpec) -> str:
    template_id = find_template(fis, spec)
    if template_id is None:
        raise AwsError("no FIS template tagged Name=%s: run `fiswatch experiment create %s` first"
                       % (spec.name, spec.target))
    return template_id


def start_experiment(session: Any, target: str) -> str:
    """Start a run of the workshop template, tagged <name>Run<N>; returns the experiment id."""
    spec = spec_for(target)
    fis = client(session, "fis")
    template_id = _template_or_fail(fis, spec)
    names = [str((run.get("tags") or {}).get("Name", "")) for run in list_runs(fis, template_id)]
    tag = "%sRun%d" % (spec.name, run_number(names, spec.name))
    started = _call("starting FIS experiment from %s" % spec.name, fis.start_experiment,
                    experimentTemplateId=template_id, tags={"Name": tag})
    return str(started["experiment"]["id"])


def experiment_status(session: Any, experiment_id: str) -> Tuple[str, str]:
    """(state, reason) of an experiment: pending, initiating, running, completed, failed..."""
    fis = client(session, "fis")
    experiment = _call("reading FIS experiment %s" % experiment_id, fis.get_experiment, id=experiment_id)
    return state_of(experiment["experiment"])


def run_name(experiment: Mapping[str, Any]) -> str:
    return str((experiment.get("tags") or {}).get("Name") or experiment.get("id") or "?")


# ---------------------------------------------------------------- dashboard watcher

@dataclass(frozen=True)
class ExperimentState:
    """What the dashboard shows about one target's experiments."""

    target: str
    template_id: Optional[str] = None
    experiment_id: Optional[str] = None
    name: Optional[str] = None
    state: Optional[str] = None
    reason: str = ""
    problem: Optional[str] = None  # why polling does not work right now


class ExperimentWatcher:
    """Polls the latest experiment of a workshop template; starts runs on request.

    Every AWS call happens in its own daemon thread: `start_run()` only asks, so a
    dashboard key handler never waits on the network.
    """

    def __init__(self, session: Any, target: str, emit: Callable[[Event], None], interval: float = 2.0) -> None:
        self._spec = spec_for(target)
        self._session = session
        self._emit = emit
        self._interval = interval
        self._state = ExperimentState(target=target)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._start_requested = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._fis: Any = None

    @property
    def state(self) -> ExperimentState:
        return self._state

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fiswatch-fis", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def start_run(self) -> None:
        """Ask for a new run (after the dashboard's y/n confirmation); returns at once."""
        self._start_requested.set()
        self._wake.set()

    def status_line(self) -> str:
        s = self._state
        head = "FIS %s" % s.target
        if s.problem and s.state is None:
            return "%s: %s" % (head, s.problem)
        if s.template_id is None:
            return "%s: no template (fiswatch experiment create %s)" % (head, s.target)
        if s.experiment_id is None:
            return "%s: %s ready, no run yet" % (head, self._spec.name)
        line = "%s: %s %s" % (head, s.name, s.state)
        if s.state == "failed" and s.reason:
            line += " (%s)" % s.reason
        return line

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._wake.wait(self._interval)
            self._wake.clear()

    def poll_once(self) -> None:
        """Start a requested run, then refresh the latest run's state; never raises."""
        try:
            if self._fis is None:
                self._fis = client(self._session, "fis")
            if self._start_requested.is_set():
                self._start_requested.clear()
                self._start_run_now()
            self._refresh()
        except Exception as exc:  # noqa: BLE001 - a watcher never dies
            self._problem(explain(exc))

    def _start_run_now(self) -> None:
        try:
            experiment_id = start_experiment(self._session, self._spec.target)
        except AwsError as exc:
            self._emit(E.warning("FIS %s: cannot start: %s" % (self._spec.target, exc)))
            return
        self._emit(E.info("FIS %s: started experiment %s" % (self._spec.target, experiment_id)))

    def _refresh(self) -> None:
        template_id = find_template(self._fis, self._spec)
        if template_id is None:
            self._set(ExperimentState(target=self._spec.target))
            return
        runs = list_runs(self._fis, template_id)
        if not runs:
            self._set(ExperimentState(target=self._spec.target, template_id=template_id))
            return
        latest = runs[-1]
        experiment = _call("reading FIS experiment", self._fis.get_experiment, id=latest["id"])["experiment"]
        state, reason = state_of(experiment)
        new = ExperimentState(target=self._spec.target, template_id=template_id, experiment_id=str(latest["id"]),
                              name=run_name(latest), state=state, reason=reason)
        old = self._state
        self._set(new)
        if (old.experiment_id, old.state) != (new.experiment_id, new.state):
            self._emit(E.experiment(str(latest["id"]), new.target, state, reason))
            if state == "failed":
                self._emit(E.warning("FIS %s: experiment %s failed: %s; check the role %s and "
                                     "the target in the FIS console" % (new.target, new.experiment_id,
                                                                        reason or "no reason given", ROLE_NAME)))

    def _set(self, new: ExperimentState) -> None:
        if self._state.problem is not None and new.problem is None:
            self._emit(E.info("FIS %s: polling works again" % self._spec.target))
        self._state = new

    def _problem(self, reason: str) -> None:
        if self._state.problem is None:
            self._emit(E.warning("FIS %s: %s" % (self._spec.target, reason)))
        from dataclasses import replace

        self._state = replace(self._state, problem=reason)
