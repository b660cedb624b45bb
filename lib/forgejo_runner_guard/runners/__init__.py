"""A runner and what may be done to it: the ways of reaching it
(backends/), the jobs that forbid a restart (jobs, hostjobs), a restart and
its budget (restart), the restart history (state), and what the runner's
own files say (registration)."""
