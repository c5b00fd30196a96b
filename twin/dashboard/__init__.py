"""The operators' live dashboard (web page + server-sent events), ``/health`` and ``/metrics``."""

from .auth import TOKEN_ENV, DashboardAuthError, load_token
from .metrics import render_metrics
from .server import Dashboard

__all__ = ["TOKEN_ENV", "Dashboard", "DashboardAuthError", "load_token", "render_metrics"]
