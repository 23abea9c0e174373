package metrics

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-dr/rewind/internal/catalog"
)

// ScrapeTimeout bounds the catalog reads of one scrape.
const ScrapeTimeout = 10 * time.Second

// DurationBuckets are the upper bounds of the job duration histogram.
var DurationBuckets = []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600} // seconds

var (
	jobsDesc = prometheus.NewDesc("rewind_jobs", "Jobs in the catalog by kind and state.",
		[]string{"kind", "state"}, nil)
	bytesDesc = prometheus.NewDesc("rewind_job_bytes_total", "Bytes processed by finished jobs, by kind.",
		[]string{"kind"}, nil)
	durationDesc = prometheus.NewDesc("rewind_job_duration_seconds", "Run time of finished jobs (from start to finish), by kind.",
		[]string{"kind"}, nil)
	lastPointDesc = prometheus.NewDesc("rewind_last_point_timestamp_seconds",
		"Capture time of the newest available recovery point of each resource (for a continuous log, the end of its restorable range), as a Unix time.",
		[]string{"resource"}, nil)
	rpoDesc = prometheus.NewDesc("rewind_rpo_exposure_seconds",
		"Seconds since the newest available recovery point of the resource in a vault of the site (site \"\" for vaults of no site). Absent when the site holds no point of the resource.",
		[]string{"resource", "site"}, nil)
	pointBytesDesc = prometheus.NewDesc("rewind_point_bytes", "Size of the available recovery points, by resource and vault.",
		[]string{"resource", "vault"}, nil)
	upDesc = prometheus.NewDesc("rewind_catalog_up", "1 when the last scrape read the catalog, 0 when it failed.", nil, nil)
)

// Collector is a prometheus.Collector that reads the catalog at each scrape. Safe for
// concurrent use.
type Collector struct {
	store catalog.Store
	now   func() time.Time
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector over store; now is the clock for RPO exposure
// (time.Now when nil).
func NewCollector(store catalog.Store, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	return &Collector{store: store, now: now}
}

// Describe sends the descriptors of every metric Collect may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, bytesDesc, durationDesc, lastPointDesc, rpoDesc, pointBytesDesc, upDesc} {
		ch <- d
	}
}

type snapshot struct {
	jobs   []*catalog.Job
	points []*catalog.Point
	vaults []catalog.Vault
}

func (c *Collector) read(ctx context.Context) (snapshot, error) {
	var s snapshot
	err := c.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		if s.jobs, err = tx.ListJobs(ctx, catalog.JobFilter{}); err != nil {
			return err
		}
		if s.points, err = tx.ListPoints(ctx, catalog.PointFilter{State: catalog.Ptr(catalog.PointAvailable)}); err != nil {
			return err
		}
		s.vaults, err = tx.ListVaults(ctx)
		return err
	})
	return s, err
}

// Collect reads the catalog and sends the metrics. When the catalog cannot be read it
// sends rewind_catalog_up 0 and an invalid metric carrying the error.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	s, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	now := c.now()

	// Every kind and state is reported, zeros included, so alerts on a series that
	// appears only after the first failure are not needed.
	counts := map[catalog.JobKind]map[catalog.State]int{}
	bytes := map[catalog.JobKind]int64{}
	durs := map[catalog.JobKind][]float64{}
	for _, j := range s.jobs {
		if counts[j.Kind] == nil {
			counts[j.Kind] = map[catalog.State]int{}
		}
		counts[j.Kind][j.State]++
		if j.State.Terminal() {
			bytes[j.Kind] += j.BytesDone
			if j.StartedAt != nil && j.FinishedAt != nil {
				durs[j.Kind] = append(durs[j.Kind], j.FinishedAt.Sub(*j.StartedAt).Seconds())
			}
		}
	}
	for _, k := range allKinds {
		for _, st := range allStates {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[k][st]), string(k), string(st))
		}
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(bytes[k]), string(k))
		ch <- histogram(k, durs[k])
	}

	site := map[string]string{}
	for _, v := range s.vaults {
		site[v.Name] = v.Site
	}
	type rs struct{ resource, site string }
	type rv struct{ resource, vault string }
	last := map[string]time.Time{}
	lastAt := map[rs]time.Time{}
	size := map[rv]int64{}
	for _, p := range s.points {
		// A continuous log point restores up to the end of its range.
		at := p.Time
		if p.RangeTo != nil && p.RangeTo.After(at) {
			at = *p.RangeTo
		}
		if at.After(last[p.Resource]) {
			last[p.Resource] = at
		}
		key := rs{p.Resource, site[p.Vault]}
		if at.After(lastAt[key]) {
			lastAt[key] = at
		}
		size[rv{p.Resource, p.Vault}] += p.SizeBytes
	}
	for _, r := range sortedKeys(last) {
		ch <- prometheus.MustNewConstMetric(lastPointDesc, prometheus.GaugeValue, float64(last[r].UnixNano())/1e9, r)
	}
	for key, t := range lastAt {
		exposure := now.Sub(t).Seconds()
		if exposure < 0 {
			exposure = 0 // a point stamped in the future (clock skew) exposes nothing
		}
		ch <- prometheus.MustNewConstMetric(rpoDesc, prometheus.GaugeValue, exposure, key.resource, key.site)
	}
	for key, n := range size {
		ch <- prometheus.MustNewConstMetric(pointBytesDesc, prometheus.GaugeValue, float64(n), key.resource, key.vault)
	}
}

var allKinds = []catalog.JobKind{catalog.JobBackup, catalog.JobCopy, catalog.JobRestore, catalog.JobVerify, catalog.JobPrune}

var allStates = []catalog.State{catalog.StateCreated, catalog.StatePending, catalog.StateRunning, catalog.StateCompleted,
	catalog.StatePartial, catalog.StateFailed, catalog.StateAborted, catalog.StateExpired}

// histogram builds the duration histogram of one kind from the durations observed.
func histogram(k catalog.JobKind, durs []float64) prometheus.Metric {
	buckets := make(map[float64]uint64, len(DurationBuckets))
	var sum float64
	for _, b := range DurationBuckets {
		buckets[b] = 0
	}
	for _, d := range durs {
		sum += d
		for _, b := range DurationBuckets {
			if d <= b {
				buckets[b]++
			}
		}
	}
	return prometheus.MustNewConstHistogram(durationDesc, uint64(len(durs)), sum, buckets, string(k))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
