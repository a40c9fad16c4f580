"""Rate limits: SmartLead's windows, the shared sliding-window limiter, the adaptive rate."""
