package main

import (
	"errors"
	"fmt"

	"github.com/callcontrol/callcontrol/internal/natsembed"
)

// startNATS runs an embedded nats-server with JetStream on listen, its
// store in dataDir (locked by this process; emptied first if fresh).
func startNATS(listen, dataDir string, fresh bool) (*natsembed.Server, error) {
	ns, err := natsembed.Start(natsembed.Config{Listen: listen, DataDir: dataDir, Fresh: fresh, ServerName: "callcontrol-dev"})
	if err != nil {
		return nil, embedError(err, listen)
	}
	return ns, nil
}

// embedError says what went wrong in terms of the flags.
func embedError(err error, listen string) error {
	var (
		locked *natsembed.LockedError
		dirErr *natsembed.DataDirError
		lnErr  *natsembed.ListenError
		srvErr *natsembed.ServerError
	)
	switch {
	case errors.As(err, &locked):
		return fmt.Errorf("%s: data directory %s is in use by another callcontrol process (%s); stop it or use another directory",
			flagRef("data-dir"), locked.Dir, locked.Holder())
	case errors.As(err, &dirErr):
		return dataDirError(dirErr)
	case errors.As(err, &lnErr) && lnErr.Port:
		return fmt.Errorf("%s: port: %w", flagRef("nats-listen"), lnErr.Err)
	case errors.As(err, &lnErr):
		return fmt.Errorf("%s: %w", flagRef("nats-listen"), lnErr.Err)
	case errors.Is(err, natsembed.ErrNotReady):
		return fmt.Errorf("embedded NATS: not ready on %s (is the port in use? set --nats-listen)", listen)
	case errors.As(err, &srvErr):
		return fmt.Errorf("embedded NATS: %w", srvErr.Err)
	}
	return err
}

// dataDirError names --data-dir (and --fresh when emptying it failed).
func dataDirError(e *natsembed.DataDirError) error {
	switch e.Op {
	case natsembed.OpLock:
		return fmt.Errorf("%s: lock %s: %w", flagRef("data-dir"), e.Path, e.Err)
	case natsembed.OpFresh:
		return fmt.Errorf("%s: --fresh: %w", flagRef("data-dir"), e.Err)
	}
	return fmt.Errorf("%s: %w", flagRef("data-dir"), e.Err)
}
