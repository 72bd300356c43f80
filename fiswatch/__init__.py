"""fiswatch: watch MySQL drivers side by side while a database fails over."""

__version__ = "0.1.0"
