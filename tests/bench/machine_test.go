//go:build bench

package bench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machineInfo describes where the report was measured.
type machineInfo struct {
	NumCPU    int
	CPUModel  string
	Kernel    string
	GoVersion string
	Bpftrace  string
	LoadAvg   string
	Date      string
}

func describeMachine() machineInfo {
	m := machineInfo{
		NumCPU:    runtime.NumCPU(),
		CPUModel:  "unknown",
		Kernel:    "unknown",
		GoVersion: runtime.Version(),
		Bpftrace:  "not installed",
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	if p, err := exec.LookPath("bpftrace"); err == nil {
		if b, err := exec.Command(p, "--version").Output(); err == nil {
			m.Bpftrace = strings.TrimSpace(string(b))
		}
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadAvg() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			return strings.Join(f[:3], " ")
		}
	}
	return "unknown"
}
