package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/config"
	"zikao/internal/files"
)

// openFiles returns the file store of the settings: the bytes in the object
// store, sealed with ZIKAO_FILE_KEYS (the development key when unset, with
// a warning).
func openFiles(cfg config.Config, database *sqlx.DB) (*files.Store, error) {
	objects, err := objectStore(cfg)
	if err != nil {
		return nil, err
	}
	spec := cfg.FileKeys
	if spec == "" {
		spec = files.DevKeys
	}
	keys, err := files.ParseKeys(spec)
	if err != nil {
		return nil, fmt.Errorf("ZIKAO_FILE_KEYS: %w", err)
	}
	if keys.Dev() {
		slog.Warn("files are sealed with the public development key: set ZIKAO_FILE_KEYS outside development")
	}
	return files.NewStore(database, objects, keys), nil
}

// objectStore is the files' bucket of the settings.
func objectStore(cfg config.Config) (*files.Objects, error) {
	return files.NewObjects(files.ObjectConfig{
		Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		TLS: cfg.S3TLS, Region: cfg.S3Region,
	})
}

// runFilesCmd runs `zikao files migrate` (move the files PostgreSQL still
// holds into the object store) and `zikao files rekey` (re-seal data keys
// with the current key of ZIKAO_FILE_KEYS). Both go in batches, print
// their progress, and can be stopped and run again at any point.
func runFilesCmd(ctx context.Context, cfg config.Config, args []string) error {
	const use = "usage: zikao files migrate|rekey [-batch 100] | zikao files list [-limit 100]"
	if len(args) > 0 && args[0] == "list" {
		return listFiles(ctx, cfg, args[1:])
	}
	if len(args) == 0 || (args[0] != "migrate" && args[0] != "rekey") {
		return errors.New(use)
	}
	fs := flag.NewFlagSet("files "+args[0], flag.ContinueOnError)
	batch := fs.Int("batch", 100, "files per batch")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *batch < 1 {
		return errors.New("-batch must be at least 1")
	}
	return withDB(ctx, cfg, func(database *sqlx.DB) error {
		store, err := openFiles(cfg, database)
		if err != nil {
			return err
		}
		step, verb := store.Migrate, "moved"
		if args[0] == "rekey" {
			step, verb = store.Rekey, "re-sealed"
		}
		start := time.Now()
		var total files.Moved
		for {
			m, err := step(ctx, *batch)
			total.Files += m.Files
			total.Bytes += m.Bytes
			if err != nil {
				return fmt.Errorf("after %d file(s) %s: %w", total.Files, verb, err)
			}
			fmt.Printf("%s %d file(s), %d bytes; %d left\n", verb, total.Files, total.Bytes, m.Left)
			if m.Left == 0 || m.Files == 0 {
				elapsed := time.Since(start)
				fmt.Printf("done: %d file(s) %s in %s", total.Files, verb, elapsed.Round(time.Millisecond))
				if total.Files > 0 {
					fmt.Printf(" (%s per thousand)", (elapsed * 1000 / time.Duration(total.Files)).Round(time.Millisecond))
				}
				fmt.Println()
				if m.Left > 0 {
					return fmt.Errorf("%d file(s) left that could not be %s", m.Left, verb)
				}
				return nil
			}
		}
	})
}

// listFiles prints the objects of the bucket (keys are digests, sizes those
// of the ciphertext) and how many files PostgreSQL knows where.
func listFiles(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("files list", flag.ContinueOnError)
	limit := fs.Int("limit", 100, "objects listed at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withDB(ctx, cfg, func(database *sqlx.DB) error {
		store, err := openFiles(cfg, database)
		if err != nil {
			return err
		}
		objects, err := store.Objects().List(ctx, *limit)
		if err != nil {
			return err
		}
		fmt.Printf("bucket %s at %s:\n", cfg.S3Bucket, cfg.S3Endpoint)
		for _, o := range objects {
			fmt.Printf("  %s  %9d bytes  %s\n", o.Key, o.Size, o.LastModified.Format(time.RFC3339))
		}
		var n struct {
			Stored     int `db:"stored"`
			InDatabase int `db:"in_database"`
			Purged     int `db:"purged"`
		}
		err = database.GetContext(ctx, &n, `SELECT count(*) FILTER (WHERE stored_at IS NOT NULL) AS stored,
			count(*) FILTER (WHERE data IS NOT NULL) AS in_database, count(*) FILTER (WHERE purged_at IS NOT NULL) AS purged FROM files`)
		if err != nil {
			return err
		}
		fmt.Printf("files: %d in the object store, %d still in PostgreSQL (zikao files migrate), %d purged\n", n.Stored, n.InDatabase, n.Purged)
		return nil
	})
}
