package persistence

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

// SetLogger sends the messages bun and its PostgreSQL driver print (for
// example about connections dropped during a database outage) to logger at
// Warn level, instead of their default of plain lines on stderr. Both
// libraries keep their logger in a package variable, so this affects the
// whole process: call it once, from main.
func SetLogger(logger *slog.Logger) {
	l := logger.With("lib", "bun")
	pgdriver.Logger = driverLogger{l}
	bun.SetLogger(bunLogger{l})
}

type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Printf(ctx context.Context, format string, v ...any) {
	d.l.WarnContext(ctx, fmt.Sprintf(format, v...))
}

type bunLogger struct{ l *slog.Logger }

func (b bunLogger) Printf(format string, v ...any) {
	b.l.Warn(fmt.Sprintf(format, v...))
}
