"""The operators' live dashboard (web page + server-sent events), ``/health`` and ``/metrics``."""

from twin.dashboard.auth import TOKEN_ENV, DashboardAuthError, load_token
from twin.dashboard.metrics import render_metrics
from twin.dashboard.server import Dashboard

__all__ = ["TOKEN_ENV", "Dashboard", "DashboardAuthError", "load_token", "render_metrics"]
