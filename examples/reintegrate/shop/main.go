// Command shop is the example service of Rewind's re-integration example: a tiny web shop
// that serves the files of a data directory and reads its orders from an SQLite database.
// After a disaster, a runbook restores both and starts it on the restored copies
// (examples/reintegrate/README.md).
//
//	shop --data /srv/restore/shop-files --db /srv/restore/shop.db --listen 127.0.0.1:8081
//
// GET /health answers 200 once the directory and the database are readable; GET /files/P
// serves P from the data directory; GET /orders answers {"orders": N}.
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"

	_ "modernc.org/sqlite"
)

func main() {
	data := flag.String("data", "", "the shop's data directory")
	dbPath := flag.String("db", "", "the shop's SQLite database")
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	flag.Parse()
	if *data == "" || *dbPath == "" {
		fmt.Fprintln(os.Stderr, "usage: shop --data DIR --db FILE [--listen HOST:PORT]")
		os.Exit(2)
	}
	db, err := sql.Open("sqlite", "file:"+*dbPath+"?mode=ro")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	orders := func() (int, error) {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM orders`).Scan(&n)
		return n, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(*data); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if _, err := orders(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /files/", http.StripPrefix("/files/", http.FileServer(http.Dir(*data))))
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		n, err := orders()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"orders": n})
	})
	log.Printf("shop: serving %s and %s on %s", *data, *dbPath, *listen)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
