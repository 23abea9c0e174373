package sqlstore

import (
	"context"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

func (t *tx) SyncConfig(ctx context.Context, sites []catalog.Site, vaults []catalog.Vault, resources []catalog.Resource) error {
	const op = "catalog.SyncConfig"
	siteSet := map[string]bool{}
	for _, s := range sites {
		if err := checkName(op, "site", s.Name, siteSet); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, v := range vaults {
		if err := checkVault(op, v); err != nil {
			return err
		}
		if err := checkName(op, "vault", v.Name, seen); err != nil {
			return err
		}
		if v.Site != "" && !siteSet[v.Site] {
			return errs.Errorf(op, errs.Invalid, "vault %s names site %q, which is not configured", v.Name, v.Site)
		}
	}
	clear(seen)
	for _, r := range resources {
		if err := checkResource(op, r); err != nil {
			return err
		}
		if err := checkName(op, "resource", r.Name, seen); err != nil {
			return err
		}
	}
	// Replace the three sets: vaults go before the sites they reference, and come after.
	for _, q := range []string{"DELETE FROM vaults", "DELETE FROM sites", "DELETE FROM resources"} {
		if _, err := t.exec(ctx, op, q); err != nil {
			return err
		}
	}
	for _, s := range sites {
		if err := t.upsertSite(ctx, op, s); err != nil {
			return err
		}
	}
	for _, v := range vaults {
		if err := t.upsertVault(ctx, op, v); err != nil {
			return err
		}
	}
	for _, r := range resources {
		if err := t.upsertResource(ctx, op, r); err != nil {
			return err
		}
	}
	return nil
}

func checkName(op, what, name string, seen map[string]bool) error {
	if name == "" {
		return errs.Errorf(op, errs.Invalid, "a %s has an empty name", what)
	}
	if seen[name] {
		return errs.Errorf(op, errs.Invalid, "%s %q is given twice", what, name)
	}
	seen[name] = true
	return nil
}

func checkVault(op string, v catalog.Vault) error {
	if v.Name == "" || v.URL == "" {
		return errs.Errorf(op, errs.Invalid, "vault %q: name and URL must be set", v.Name)
	}
	return nil
}

func checkResource(op string, r catalog.Resource) error {
	if r.Name == "" || r.Kind == "" {
		return errs.Errorf(op, errs.Invalid, "resource %q: name and kind must be set", r.Name)
	}
	return nil
}

func (t *tx) UpsertSite(ctx context.Context, s catalog.Site) error {
	const op = "catalog.UpsertSite"
	if s.Name == "" {
		return errs.Errorf(op, errs.Invalid, "a site has an empty name")
	}
	return t.upsertSite(ctx, op, s)
}

func (t *tx) upsertSite(ctx context.Context, op string, s catalog.Site) error {
	_, err := t.exec(ctx, op, "INSERT INTO sites (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", s.Name)
	return err
}

func (t *tx) UpsertVault(ctx context.Context, v catalog.Vault) error {
	const op = "catalog.UpsertVault"
	if err := checkVault(op, v); err != nil {
		return err
	}
	if v.Site != "" {
		// Checked here rather than left to the foreign key, so that the error names the site
		// and the transaction stays usable on PostgreSQL.
		var n int
		if err := t.tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sites WHERE name = $1", v.Site).Scan(&n); err != nil {
			return classify(op, err)
		}
		if n == 0 {
			return errs.Errorf(op, errs.Invalid, "vault %s names site %q, which does not exist", v.Name, v.Site).
				WithHint("add the site first")
		}
	}
	return t.upsertVault(ctx, op, v)
}

func (t *tx) upsertVault(ctx context.Context, op string, v catalog.Vault) error {
	_, err := t.exec(ctx, op, `INSERT INTO vaults (name, site, url, locked) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET site = excluded.site, url = excluded.url, locked = excluded.locked`,
		v.Name, nullString(v.Site), v.URL, v.Locked)
	return err
}

func (t *tx) UpsertResource(ctx context.Context, r catalog.Resource) error {
	const op = "catalog.UpsertResource"
	if err := checkResource(op, r); err != nil {
		return err
	}
	return t.upsertResource(ctx, op, r)
}

func (t *tx) upsertResource(ctx context.Context, op string, r catalog.Resource) error {
	tags, err := jsonArg(nonNilMap(r.Tags))
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	_, err = t.exec(ctx, op, `INSERT INTO resources (name, kind, host, tags, continuous) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, host = excluded.host, tags = excluded.tags,
	continuous = excluded.continuous`,
		r.Name, r.Kind, r.Host, tags, r.Continuous)
	return err
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (t *tx) ListSites(ctx context.Context) ([]catalog.Site, error) {
	return queryAll(ctx, t, "catalog.ListSites", "SELECT name FROM sites ORDER BY name", nil,
		func(r scanner) (catalog.Site, error) {
			var s catalog.Site
			return s, r.Scan(&s.Name)
		})
}

const vaultCols = "name, site, url, locked"

func scanVault(r scanner) (catalog.Vault, error) {
	var v catalog.Vault
	return v, r.Scan(&v.Name, nullStringCol{&v.Site}, &v.URL, &v.Locked)
}

func (t *tx) ListVaults(ctx context.Context) ([]catalog.Vault, error) {
	return queryAll(ctx, t, "catalog.ListVaults", "SELECT "+vaultCols+" FROM vaults ORDER BY name", nil, scanVault)
}

func (t *tx) GetVault(ctx context.Context, name string) (*catalog.Vault, error) {
	v, err := queryOne(ctx, t, "catalog.GetVault", "vault "+name,
		"SELECT "+vaultCols+" FROM vaults WHERE name = $1", []any{name}, scanVault)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

const resourceCols = "name, kind, host, tags, continuous"

func scanResource(r scanner) (catalog.Resource, error) {
	var res catalog.Resource
	if err := r.Scan(&res.Name, &res.Kind, &res.Host, jsonCol{&res.Tags}, &res.Continuous); err != nil {
		return res, err
	}
	if len(res.Tags) == 0 {
		res.Tags = nil
	}
	return res, nil
}

func (t *tx) ListResources(ctx context.Context) ([]catalog.Resource, error) {
	return queryAll(ctx, t, "catalog.ListResources", "SELECT "+resourceCols+" FROM resources ORDER BY name", nil, scanResource)
}

func (t *tx) GetResource(ctx context.Context, name string) (*catalog.Resource, error) {
	r, err := queryOne(ctx, t, "catalog.GetResource", "resource "+name,
		"SELECT "+resourceCols+" FROM resources WHERE name = $1", []any{name}, scanResource)
	if err != nil {
		return nil, err
	}
	return &r, nil
}
