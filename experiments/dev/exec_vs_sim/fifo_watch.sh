#!/bin/bash
# dev: give SCHED_FIFO 20 to every child process of PID $1 (the executor's workers) while it runs
while kill -0 $1 2>/dev/null; do
  for c in $(pgrep -P $1); do
    chrt -p $c | grep -q SCHED_FIFO || chrt -f -p 20 $c 2>/dev/null
  done
  sleep 0.1
done
