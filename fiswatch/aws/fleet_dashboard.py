"""`fiswatch fleet --dashboard NAME`: a CloudWatch dashboard of the room, for the AWS console.

`dashboard_body()` is pure: the JSON body, built from metric math over SEARCH expressions
so that every host that publishes, now or later, is summed in without updating the
dashboard: per probe column (endpoint/backend) the room's interactions per second, the
number of stalled probes, errors per second and the worst write gap; plus the workshop's
own two metrics. `put_dashboard()` is the only call in `fleet` that writes to AWS.
"""
import json
from typing import Any, Dict, List, Sequence, Tuple

from fiswatch.aws.fleet_data import NAMESPACE

DEFAULT_COLUMNS = ("aurora/mysql-connector", "aurora/pymysql", "rds/mysql-connector", "rds/pymysql")
WORKSHOP_METRICS = ("aurora_interactions_per_second", "rds_interactions_per_second")
# (title, metric, statistic inside SEARCH, math around it, period)
PANELS = (
    ("Interactions per second, whole room", "interactions", "Sum", "SUM", 1),
    ("Stalled probes", "stalled", "Maximum", "SUM", 10),
    ("Errors per second, whole room", "errors", "Sum", "SUM", 1),
    ("Worst write gap (s)", "write_gap", "Maximum", "MAX", 10),
)


def search(metric: str, endpoint: str, backend: str, stat: str, period: int, namespace: str = NAMESPACE) -> str:
    """A SEARCH over every host and run of one probe column.

    >>> search("stalled", "aurora", "pymysql", "Maximum", 10)
    'SEARCH(\\'{fisworkshop,backend,endpoint,host,run} MetricName="stalled" endpoint="aurora" backend="pymysql"\\', \\'Maximum\\', 10)'
    """
    return ("SEARCH('{%s,backend,endpoint,host,run} MetricName=\"%s\" endpoint=\"%s\" backend=\"%s\"', '%s', %d)"
            % (namespace, metric, _quote(endpoint), _quote(backend), stat, period))


def _quote(value: str) -> str:
    return "".join(c for c in value if c not in "\"'\\{}")


def _widget(title: str, metrics: List[Any], region: str, x: int, y: int, period: int,
            stat: str = "Sum") -> Dict[str, Any]:
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                           "period": period, "stat": stat, "metrics": metrics}}


def dashboard_body(region: str, columns: Sequence[str] = DEFAULT_COLUMNS, namespace: str = NAMESPACE,
                   title: str = "fiswatch: the room") -> Dict[str, Any]:
    """The dashboard as a dict (json.dumps it for PutDashboard)."""
    columns = list(columns) or list(DEFAULT_COLUMNS)
    widgets: List[Dict[str, Any]] = [{
        "type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
        "properties": {"markdown": "## %s\nPer probe column (endpoint/backend), summed over every host running "
                                   "`fiswatch watch --cloudwatch`. `fiswatch fleet` shows each host." % title}}]
    for index, (panel, metric, stat, math, period) in enumerate(PANELS):
        metrics: List[Any] = []
        for number, column in enumerate(columns):
            endpoint, _, backend = column.partition("/")
            metrics.append([{"expression": "%s(%s)" % (math, search(metric, endpoint, backend, stat, period,
                                                                        namespace)),
                             "label": column, "id": "e%d" % (number + 1)}])
        widgets.append(_widget(panel, metrics, region, 12 * (index % 2), 2 + 6 * (index // 2), period))
    workshop = [[namespace, name, {"stat": "Sum", "label": name}] for name in WORKSHOP_METRICS]
    widgets.append(_widget("Workshop metrics (all hosts)", workshop, region, 0, 14, 1))
    return {"start": "-PT1H", "periodOverride": "inherit", "widgets": widgets}


def put_dashboard(cloudwatch: Any, name: str, body: Dict[str, Any]) -> Tuple[bool, List[str]]:
    """Create or update dashboard `name`: (created?, validation messages). Raises botocore errors."""
    created = True
    try:
        cloudwatch.get_dashboard(DashboardName=name)
        created = False
    except Exception as exc:  # noqa: BLE001 - only "not found" means create; the rest is raised
        code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
        if "notfound" not in code.lower():
            raise
    answer = cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    messages = ["%s: %s" % (m.get("DataPath", "body"), m.get("Message", ""))
                for m in answer.get("DashboardValidationMessages", [])]
    return created, messages


def console_url(region: str, name: str) -> str:
    return "https://%s.console.aws.amazon.com/cloudwatch/home?region=%s#dashboards:name=%s" % (region, region, name)
