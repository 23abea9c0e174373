package control

import (
	"context"
	"sort"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
)

// SyncConfig writes cfg's sites, vaults and resources into the catalog, replacing the
// set it held (points and jobs stay, as history).
func SyncConfig(ctx context.Context, store catalog.Store, cfg *config.Config) error {
	var sites []catalog.Site
	var vaults []catalog.Vault
	var resources []catalog.Resource
	for _, name := range sorted(cfg.Sites) {
		sites = append(sites, catalog.Site{Name: name})
	}
	for _, name := range sorted(cfg.Vaults) {
		v := cfg.Vaults[name]
		vaults = append(vaults, catalog.Vault{Name: name, Site: v.Site, URL: v.URL})
	}
	for _, name := range sorted(cfg.Resources) {
		r := cfg.Resources[name]
		resources = append(resources, catalog.Resource{Name: name, Kind: string(r.Kind), Host: r.Host, Tags: r.Tags, Continuous: r.Continuous})
	}
	return store.Tx(ctx, func(tx catalog.Tx) error { return tx.SyncConfig(ctx, sites, vaults, resources) })
}

func sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
