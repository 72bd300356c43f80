"""The lab's SQL setup at start: users, database, topology tables, replication, and the credentials file.

Run once by the daemon (lab/daemon.py) after its mariadbd children are up.
"""
from typing import Any, Dict

from fiswatch.lab import aurora, bluegreen, maz
from fiswatch.lab import layout as L
from fiswatch.lab.mariadb import sql
from fiswatch.lab.replication import replicate, wait_caught_up
from fiswatch.lab.topology import create_statements


def setup_sql(lab: Any, password: str) -> None:
    """Users, the database and table, topology tables and replication of every cluster (the daemon's start)."""
    layout = lab.layout
    for spec in layout.instances:
        sock = layout.server_socket(spec)
        others = sql(sock, ["SELECT host FROM mysql.user WHERE user='root' AND host<>'localhost'"])
        drops = ["SET sql_log_bin=0"] + ["DROP USER IF EXISTS 'root'@'%s'" % h.replace("'", "")
                                       for (h,) in others]
        sql(sock, drops)  # root only over the unix socket
    if layout.multi_az_cluster:
        maz.prepare(layout)
    for cluster in layout.clusters:
        writer, *readers = layout.cluster(cluster)
        sql(layout.server_socket(writer), [
            "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY 'x'" % L.REPL_USER,
            ("ALTER USER '" + L.REPL_USER + "'@'%%' IDENTIFIED BY %s", (password,)),
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%%'" % L.REPL_USER,
            "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY 'x'" % L.CLIENT_USER,
            ("ALTER USER '" + L.CLIENT_USER + "'@'%%' IDENTIFIED BY %s", (password,)),
            "CREATE DATABASE IF NOT EXISTS %s" % L.DATABASE,
            "GRANT ALL ON %s.* TO '%s'@'%%'" % (L.DATABASE, L.CLIENT_USER),
            "CREATE TABLE IF NOT EXISTS %s.%s (id INT AUTO_INCREMENT PRIMARY KEY, value INT)"
            % (L.DATABASE, L.TABLE),
        ])
        if cluster == "aurora":  # the topology the instance proxies answer from (topology.py)
            members = [aurora.server_id(s.index) for s in layout.instances if s.cluster == cluster]
            sql(layout.server_socket(writer), create_statements(members, aurora.server_id(writer.index),
                                                                L.CLIENT_USER))
        if cluster == "maz":  # mysql.rds_topology, semi-sync on the writer (maz.py)
            sql(layout.server_socket(writer), maz.writer_statements(layout))
        for reader in readers:
            replicate(layout, reader, writer, password)
            if cluster == "maz":
                maz.record_source(layout, reader, writer)
    for cluster in layout.clusters:
        writer, *readers = layout.cluster(cluster)
        for reader in readers:
            wait_caught_up(layout, reader, writer, timeout=30)
    if layout.blue_green:  # the green environment (lab/bluegreen.py)
        bluegreen.setup(lab, password)

def write_credentials(layout: L.Layout, password: str) -> None:
    """The credentials file `lab creds` and `watch --lab` read (private to the user)."""
    creds: Dict[str, Any] = {}
    for cluster in layout.clusters:
        entry = {"username": L.CLIENT_USER, "password": password, "engine": "mysql",
                 "host": layout.endpoint_names[cluster], "port": layout.port, "dbname": L.DATABASE}
        if cluster == "aurora":
            entry["dbClusterIdentifier"] = L.CLUSTER
        elif cluster == "maz":
            entry["dbClusterIdentifier"] = L.MAZ_CLUSTER
        else:
            entry["dbInstanceIdentifier"] = L.CLUSTER + "-mysql"
        creds[cluster] = entry
    creds["replication"] = {"username": L.REPL_USER, "password": password}
    L.write_private(layout.credentials_file, creds)
