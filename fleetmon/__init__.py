"""fleetmon: agentless SSH fleet collector for KVM/Xen virtualisation performance monitoring."""

__version__ = "0.1.0"
