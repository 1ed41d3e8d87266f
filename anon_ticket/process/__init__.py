"""What the daemon's process needs from the operating system: systemd notifications (`systemd`),
no core dumps or ptrace (`hardening`), logging (`logs`), files written durably (`durable`), the
generated internal API token (`internal_token`) and this node's name and role (`node`).
"""
