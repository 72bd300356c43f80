"""fiswatch's own TLS options, one meaning for every backend, named as the `mysql` client names them.

  --ssl-mode DISABLED         never TLS
             PREFERRED        TLS when the server offers it, no certificate check (what PyMySQL 1.2 and
                              mysql-connector do by themselves)
             REQUIRED         TLS or no connection; no certificate check
             VERIFY_CA        TLS, the certificate must chain to the CA
             VERIFY_IDENTITY  VERIFY_CA, and the certificate must name the endpoint's host
  --ssl-ca FILE               the CA bundle (PEM): the lab's own CA by itself, on AWS the RDS global bundle

Not given, each driver does what it does by itself (`fiswatch backends` says what). Each backend maps
these onto its driver's own options (fiswatch/backends/). Verification by name never needs the driver
to resolve the name: fiswatch connects to the address it resolved and checks the certificate against
the endpoint's name.
"""
import os
from dataclasses import dataclass
from typing import Optional

from fiswatch.config.checks import ConfigError, arg_type

MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
VERIFYING = ("VERIFY_CA", "VERIFY_IDENTITY")
RDS_BUNDLE = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
AWS_DOMAINS = (".rds.amazonaws.com", ".rds.amazonaws.com.cn", ".rds.sc2s.sgov.gov", ".rds.c2s.ic.gov")
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_MAX_BUNDLE = 16 * 1024 * 1024


@dataclass(frozen=True)
class TlsOptions:
    """What the user asked for; mode None = the driver's own default."""

    mode: Optional[str] = None
    ca: Optional[str] = None

    def verifies(self) -> bool:
        return self.mode in VERIFYING

    def describe(self) -> str:
        """`VERIFY_IDENTITY ca=/x/ca.pem`, or `driver default`.

        >>> TlsOptions('REQUIRED').describe()
        'REQUIRED'
        """
        if self.mode is None and self.ca is None:
            return "driver default"
        return " ".join(p for p in ((self.mode or "driver default"), ("ca=" + self.ca) if self.ca else "") if p)


def check_mode(text: str) -> str:
    """One of MODES (any case); ConfigError otherwise.

    >>> check_mode('verify_identity')
    'VERIFY_IDENTITY'
    >>> check_mode('on')
    Traceback (most recent call last):
    ...
    fiswatch.config.checks.ConfigError: 'on' is not an ssl mode: use one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY
    """
    mode = str(text).strip().upper().replace("-", "_")
    if mode not in MODES:
        raise ConfigError("%r is not an ssl mode: use one of %s" % (str(text), ", ".join(MODES)))
    return mode


def check_ca_file(path: str) -> str:
    """A readable PEM file holding at least one certificate; its absolute path. Says nothing of its content."""
    path = os.path.abspath(os.path.expanduser(str(path).strip()))
    if not os.path.exists(path):
        raise ConfigError("CA file %s does not exist: give the PEM bundle (on AWS: %s)" % (path, RDS_BUNDLE))
    if os.path.isdir(path):
        raise ConfigError("CA file %s is a directory: give the PEM bundle file itself" % path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_BUNDLE)
    except OSError as exc:
        raise ConfigError("CA file %s cannot be read (%s)" % (path, exc.strerror or exc))
    if b"-----BEGIN " not in data:
        raise ConfigError("CA file %s is not PEM (no -----BEGIN line): give the .pem bundle, not DER or a key" % path)
    if _PEM_CERT not in data:
        raise ConfigError("CA file %s holds no certificate (PEM without BEGIN CERTIFICATE): give the CA bundle" % path)
    return path


def effective(options: TlsOptions, host: str, endpoint_ca: Optional[str], source: str = "") -> TlsOptions:
    """The TLS one endpoint gets: the CA given, else the endpoint's own (the lab's); ConfigError when a
    verifying mode has no CA against the lab or AWS (the system's trust store knows neither).

    >>> effective(TlsOptions('VERIFY_CA'), 'db.lab', '/lab/ca.pem').ca
    '/lab/ca.pem'
    """
    ca = options.ca or endpoint_ca
    if options.mode is None and options.ca:  # as the mysql client: a CA given and no mode verifies it
        options = TlsOptions("VERIFY_CA", options.ca)
    if options.verifies() and not ca:
        if source.startswith("lab:"):
            raise ConfigError("--ssl-mode %s needs the lab's CA, which the lab does not name: restart the lab "
                              "(`fiswatch lab down; fiswatch lab up`) or give --ssl-ca" % options.mode)
        if host.lower().rstrip(".").endswith(AWS_DOMAINS):
            raise ConfigError("--ssl-mode %s on %s needs --ssl-ca FILE: download the RDS global bundle from %s"
                              % (options.mode, host, RDS_BUNDLE))
    return TlsOptions(options.mode, ca)


MODE_ARG = arg_type(check_mode, "ssl mode")
CA_ARG = arg_type(check_ca_file, "CA file")
