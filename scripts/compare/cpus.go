//go:build linux

package main

// This file places the processes on CPUs: servers on one, the load
// generator on another, or everything anywhere for the unpinned round.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func (l *lab) setUpCPUs() error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return os.NewSyscallError("sched_getaffinity", err)
	}
	for c := range 1024 {
		if set.IsSet(c) {
			l.allCPUs = append(l.allCPUs, c)
		}
	}
	if len(l.allCPUs) < 2 {
		l.pin = false
	}
	if !l.pin {
		l.srvCPUs, l.loadCPUs = l.allCPUs, l.allCPUs
		return nil
	}
	l.srvCPUs, l.loadCPUs = l.allCPUs[:1], l.allCPUs[1:2]
	if p, err := exec.LookPath("taskset"); err == nil {
		l.taskset = p
	}
	return nil
}

// setAffinity sets the CPU affinity of every thread of process pid (twice,
// to catch threads started meanwhile; later threads inherit it).
func setAffinity(pid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return os.NewSyscallError("sched_setaffinity", err)
			}
		}
	}
	return nil
}

// pinSelf pins the load generator to its CPU (pinned) or lets it use
// every CPU, and sets GOMAXPROCS to match.
func (l *lab) pinSelf(pinned bool) error {
	cpus := l.allCPUs
	if pinned && l.pin {
		cpus = l.loadCPUs
	}
	runtime.GOMAXPROCS(len(cpus))
	return setAffinity(os.Getpid(), cpus)
}

// pinAll pins (or unpins) the load generator and every running server.
func (l *lab) pinAll(pinned bool) error {
	if err := l.pinSelf(pinned); err != nil {
		return err
	}
	cpus := l.allCPUs
	if pinned && l.pin {
		cpus = l.srvCPUs
	}
	for _, p := range l.procs {
		if !p.exited() {
			if err := setAffinity(p.pid, cpus); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	return nil
}

// cpuList formats CPUs for taskset -c: "0", "1,3".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
