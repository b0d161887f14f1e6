"""`make demo`, in parts: options, the traffic model, the driver of the running system, the
month's simulation, the checks and the report; `deploy.local.demo_month` runs them."""
