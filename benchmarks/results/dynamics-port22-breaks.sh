#!/bin/bash
# Deliberate breaks of the port-22 kernels, each followed by tests/test_dynamics_reference.py
cd /work/p22
run() {
  name=$1; file=$2; from=$3; to=$4
  cp "$file" /tmp/p22_break_backup.py
  python3 - "$file" "$from" "$to" <<'PY'
import sys
p, a, b = sys.argv[1:]
s = open(p).read(); assert s.count(a) == 1, a; open(p, "w").write(s.replace(a, b))
PY
  echo "=== break: $name ($file: '$from' -> '$to')"
  timeout 1500 .venv/bin/python -m pytest -q -p no:randomly tests/test_dynamics_reference.py 2>&1 | grep -E "^FAILED|passed|failed" | cut -c1-220
  cp /tmp/p22_break_backup.py "$file"
}
run "explicit steps never rejected" mcland/_kernels/integrator.py "if not (err <= 1.0) or not np.isfinite(L_new):" "if (stiff and not (err <= 1.0)) or not np.isfinite(L_new):"
run "auto never switches to implicit steps" mcland/_kernels/integrator.py "if q > 0.0 and h_acc * rho >= ENTER:" "if False and q > 0.0 and h_acc * rho >= ENTER:"
run "auto never switches back" mcland/_kernels/integrator.py "if leave_run >= LEAVE_COUNT:" "if False and leave_run >= LEAVE_COUNT:"
run "visits entered at the end of the step, not located inside it" mcland/_kernels/visits.py "t_enter = t + (t_lo + b * h)" "t_enter = t + (t_lo + h)"
git -C /work/p22 status --short mcland/
