"""What makes the lab's Multi-AZ DB cluster instances answer a client as RDS MySQL does.

The AWS Advanced Python Wrapper's `multi-az-mysql` dialect (aws-advanced-python-wrapper 3.x,
`MultiAzClusterMysqlDialect` and `MultiAzTopologyUtils`) reads:

  SELECT id, endpoint, port FROM mysql.rds_topology      answered natively: the lab creates the
                                                          table with one row per instance
  SHOW VARIABLES LIKE 'report_host'                       answered natively: --report-host is set
  SHOW REPLICA STATUS, column 39 (Source_Server_Id)       rewritten: MariaDB answers SHOW SLAVE STATUS
                                                          with its own columns, order and names
                                                          (Master_Server_Id), not MySQL 8's 60
  the host id query (WHERE id = @@server_id)              answered natively

and RDS MySQL answers `version_comment` with `Source distribution` (MariaDB says its package).

Each instance's proxy rewrites exactly the query texts below (the same `QueryRewriter` as the
Aurora answers, fiswatch/lab/aurora.py) into SELECTs the real server answers. SHOW REPLICA
STATUS becomes a SELECT of MySQL 8.0's 60 columns from `fiswatch_lab.maz_replica_status`, a
table local to each server (written with sql_log_bin=0, never replicated): one row on a
reader, naming the server it replicates from, written by the lab each time it points the
reader's replication somewhere; no row on the writer. Columns MariaDB cannot fill live (file
positions, thread states) carry what the lab set up: the lab's assumption, see docs/lab.md;
Seconds_Behind_Source is the reader's real lag, asked at each SHOW (lab/maz_lag.py).
"""
from typing import Callable, Dict, List, Optional

from fiswatch.lab.aurora import IS_READER_QUERY, QueryRewriter

SCHEMA = "fiswatch_lab"
STATUS_TABLE = SCHEMA + ".maz_replica_status"
TOPOLOGY_TABLE = "mysql.rds_topology"
VERSION_COMMENT = "Source distribution"

REPLICA_STATUS_QUERY = "SHOW REPLICA STATUS"
SLAVE_STATUS_QUERY = "SHOW SLAVE STATUS"
VERSION_COMMENT_QUERY = "SHOW VARIABLES LIKE 'version_comment'"
VERSION_COMMENT_SELECT = "SELECT @@version_comment"
SOURCE_SERVER_ID_INDEX = 39

# MySQL 8.0.22+ SHOW REPLICA STATUS, in order (MySQL 8.0 Reference Manual, 15.7.7.35).
MYSQL8_REPLICA_COLUMNS = (
    "Replica_IO_State", "Source_Host", "Source_User", "Source_Port", "Connect_Retry", "Source_Log_File",
    "Read_Source_Log_Pos", "Relay_Log_File", "Relay_Log_Pos", "Relay_Source_Log_File", "Replica_IO_Running",
    "Replica_SQL_Running", "Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table",
    "Replicate_Ignore_Table", "Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Last_Errno",
    "Last_Error", "Skip_Counter", "Exec_Source_Log_Pos", "Relay_Log_Space", "Until_Condition",
    "Until_Log_File", "Until_Log_Pos", "Source_SSL_Allowed", "Source_SSL_CA_File", "Source_SSL_CA_Path",
    "Source_SSL_Cert", "Source_SSL_Cipher", "Source_SSL_Key", "Seconds_Behind_Source",
    "Source_SSL_Verify_Server_Cert", "Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error",
    "Replicate_Ignore_Server_Ids", "Source_Server_Id", "Source_UUID", "Source_Info_File", "SQL_Delay",
    "SQL_Remaining_Delay", "Replica_SQL_Running_State", "Source_Retry_Count", "Source_Bind",
    "Last_IO_Error_Timestamp", "Last_SQL_Error_Timestamp", "Source_SSL_Crl", "Source_SSL_Crlpath",
    "Retrieved_Gtid_Set", "Executed_Gtid_Set", "Auto_Position", "Replicate_Rewrite_DB", "Channel_Name",
    "Source_TLS_Version", "Source_public_key_path", "Get_Source_public_key", "Network_Namespace",
)

# The value of each column: an SQL expression over the status table `s` (or a constant).
_VALUES = {
    "Replica_IO_State": "'Waiting for source to send event'", "Source_Host": "s.source_host",
    "Source_User": "s.source_user", "Source_Port": "s.source_port", "Connect_Retry": "1",
    "Source_Log_File": "''", "Read_Source_Log_Pos": "4", "Relay_Log_File": "''", "Relay_Log_Pos": "4",
    "Relay_Source_Log_File": "''", "Replica_IO_Running": "'Yes'", "Replica_SQL_Running": "'Yes'",
    "Last_Errno": "0", "Skip_Counter": "0", "Exec_Source_Log_Pos": "4", "Relay_Log_Space": "0",
    "Until_Condition": "'None'", "Until_Log_Pos": "0", "Source_SSL_Allowed": "'No'",
    "Seconds_Behind_Source": "0", "Source_SSL_Verify_Server_Cert": "'No'", "Last_IO_Errno": "0",
    "Last_SQL_Errno": "0", "Source_Server_Id": "s.source_server_id", "Source_Info_File": "'mysql.slave_master_info'",
    "SQL_Delay": "0", "SQL_Remaining_Delay": "NULL",
    "Replica_SQL_Running_State": "'Replica has read all relay log; waiting for more updates'",
    "Source_Retry_Count": "86400", "Executed_Gtid_Set": "@@gtid_slave_pos", "Auto_Position": "1",
    "Get_Source_public_key": "0",
}


def slave_name(column: str) -> str:
    """The pre-8.0.22 name SHOW SLAVE STATUS still uses (Source_Server_Id -> Master_Server_Id)."""
    return column.replace("Replica_", "Slave_").replace("Source", "Master").replace("source", "master")


def status_select(names: List[str], lag: Optional[int] = 0) -> str:
    """The SELECT answering SHOW REPLICA/SLAVE STATUS; `lag`: its Seconds_Behind_Source (None: NULL).

    >>> "NULL AS `Seconds_Behind_Source`" in status_select(list(MYSQL8_REPLICA_COLUMNS), None)
    True
    """
    values = dict(_VALUES, Seconds_Behind_Source="NULL" if lag is None else str(int(lag)))
    cols = ", ".join("%s AS `%s`" % (values.get(c, "''"), n) for c, n in zip(MYSQL8_REPLICA_COLUMNS, names))
    return "SELECT %s FROM %s AS s" % (cols, STATUS_TABLE)


def create_status_statements(client_user: str) -> List[object]:
    """Run on every instance (local, not binlogged): the empty status table."""
    return [
        "SET sql_log_bin=0",
        "CREATE DATABASE IF NOT EXISTS %s" % SCHEMA,
        "CREATE TABLE IF NOT EXISTS %s (one TINYINT NOT NULL PRIMARY KEY DEFAULT 1, source_host VARCHAR(64) NOT NULL, "
        "source_port INT NOT NULL, source_user VARCHAR(64) NOT NULL, source_server_id BIGINT UNSIGNED NOT NULL)"
        % STATUS_TABLE,
        "DELETE FROM %s" % STATUS_TABLE,
    ]


def set_source_statements(host: str, port: int, user: str, server_id: int) -> List[object]:
    """Run on a reader when its replication is pointed at a source (local, not binlogged)."""
    return ["SET sql_log_bin=0",
            ("REPLACE INTO " + STATUS_TABLE + " (one, source_host, source_port, source_user, source_server_id) "
             "VALUES (1, %s, %s, %s, %s)", (host, int(port), user, int(server_id))),
            "SET sql_log_bin=1"]


def clear_source_statements() -> List[object]:
    """Run on the writer (local, not binlogged): no replica row, as MySQL answers on a source."""
    return ["SET sql_log_bin=0", "DELETE FROM %s" % STATUS_TABLE, "SET sql_log_bin=1"]


def topology_statements(rows: List[tuple], client_user: str) -> List[object]:
    """Run once on the writer (replicated): mysql.rds_topology (id = @@server_id, endpoint, port)."""
    out: List[object] = [
        "CREATE TABLE IF NOT EXISTS %s (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, endpoint VARCHAR(255) NOT NULL, "
        "port INT NOT NULL)" % TOPOLOGY_TABLE,
        "DELETE FROM %s" % TOPOLOGY_TABLE,
        "GRANT SELECT ON %s TO '%s'@'%%'" % (TOPOLOGY_TABLE, client_user),
        "GRANT SELECT ON %s.* TO '%s'@'%%'" % (SCHEMA, client_user),
    ]
    for row in rows:
        out.append(("INSERT INTO " + TOPOLOGY_TABLE + " (id, endpoint, port) VALUES (%s, %s, %s)", row))
    return out


def rewrites() -> Dict[str, str]:
    """Query text -> the text sent to the server instead, on every Multi-AZ cluster instance."""
    return {
        REPLICA_STATUS_QUERY: status_select(list(MYSQL8_REPLICA_COLUMNS)),
        SLAVE_STATUS_QUERY: status_select([slave_name(c) for c in MYSQL8_REPLICA_COLUMNS]),
        VERSION_COMMENT_QUERY: "SELECT 'version_comment' AS Variable_name, '%s' AS Value" % VERSION_COMMENT,
        VERSION_COMMENT_SELECT: "SELECT '%s' AS `@@version_comment`" % VERSION_COMMENT,
        IS_READER_QUERY: "SELECT @@read_only AS `@@innodb_read_only`",
    }


def rewriter_factory(lag_of: Optional[Callable[[], Optional[int]]] = None) -> Callable[[], QueryRewriter]:
    """A callable making one QueryRewriter per connection for a Multi-AZ cluster instance's proxy;
    `lag_of`: the instance's current Seconds_Behind_Source (lab/maz_lag.py), asked at each SHOW."""
    table = rewrites()
    if lag_of is None:
        return lambda: QueryRewriter(table)
    of = lag_of
    live = {REPLICA_STATUS_QUERY.encode(): list(MYSQL8_REPLICA_COLUMNS),
            SLAVE_STATUS_QUERY.encode(): [slave_name(c) for c in MYSQL8_REPLICA_COLUMNS]}
    for text in (REPLICA_STATUS_QUERY, SLAVE_STATUS_QUERY):
        table.pop(text)

    def status(text: bytes) -> Optional[str]:
        names = live.get(text.strip().upper())
        return status_select(names, of()) if names is not None else None

    return lambda: QueryRewriter(table, status)
