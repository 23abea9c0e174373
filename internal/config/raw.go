package config

import (
	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/events/rules"
	"github.com/rewind-dr/rewind/internal/monitor"
)

// The types in this file mirror rewind.yaml field by field. They are the single list of
// fields the parser accepts: the decoder walks their yaml tags, and a test checks that
// docs/rewind.schema.json describes exactly these fields. A cfg:"required" tag makes a
// field mandatory. Values stay as positioned scalars here; validate.go turns them into
// the typed Config.

// pos is a place in the file.
type pos struct{ Line, Column int }

// scalar is one YAML scalar with its position. Set is false when the field was absent
// or null.
type scalar struct {
	Value string
	Tag   string // YAML short tag: !!str, !!int, !!bool, !!float
	At    pos
	Set   bool
}

// omap is a YAML mapping with free-form keys, in file order.
type omap[T any] struct {
	Entries []entry[T]
	At      pos
	Set     bool
}

type entry[T any] struct {
	Key   string
	KeyAt pos
	Val   T
}

type rawFile struct {
	At        pos               `yaml:"-"`
	Sites     omap[rawSite]     `yaml:"sites" cfg:"required"`
	Vaults    omap[rawVault]    `yaml:"vaults" cfg:"required"`
	Resources omap[rawResource] `yaml:"resources"`
	Plans     omap[rawPlan]     `yaml:"plans"`
	Auth      *rawAuth          `yaml:"auth"`
	Server    *rawServer        `yaml:"server"`

	// Events, rules, intake, monitors and alarms (events.go).
	Events   *rawEvents                 `yaml:"events"`
	Rules    omap[spec[rules.RuleSpec]] `yaml:"rules"`
	Intake   omap[rawIntake]            `yaml:"intake"`
	Monitors omap[spec[monitor.Spec]]   `yaml:"monitors"`
	Alarms   omap[spec[alarm.Spec]]     `yaml:"alarms"`
}

type rawSite struct {
	At     pos    `yaml:"-"`
	Server scalar `yaml:"server"`
}

type rawVault struct {
	At           pos    `yaml:"-"`
	Site         scalar `yaml:"site" cfg:"required"`
	URL          scalar `yaml:"url" cfg:"required"`
	PasswordFile scalar `yaml:"password_file" cfg:"required"`
	S3           *rawS3 `yaml:"s3"`
	ReadOnly     scalar `yaml:"read_only"`
}

type rawS3 struct {
	At            pos    `yaml:"-"`
	AccessKeyFile scalar `yaml:"access_key_file"`
	SecretKeyFile scalar `yaml:"secret_key_file"`
	Region        scalar `yaml:"region"`
}

type rawResource struct {
	At            pos          `yaml:"-"`
	Kind          scalar       `yaml:"kind" cfg:"required"`
	Host          scalar       `yaml:"host"`
	Tags          omap[scalar] `yaml:"tags"`
	Continuous    scalar       `yaml:"continuous"`
	Paths         []scalar     `yaml:"paths"`
	Excludes      []scalar     `yaml:"excludes"`
	OneFileSystem scalar       `yaml:"one_file_system"`
	URL           scalar       `yaml:"url"`
	Path          scalar       `yaml:"path"`
}

type rawPlan struct {
	At     pos        `yaml:"-"`
	Select *rawSelect `yaml:"select" cfg:"required"`
	Rules  []rawRule  `yaml:"rules" cfg:"required"`
}

type rawSelect struct {
	At        pos          `yaml:"-"`
	Tags      omap[scalar] `yaml:"tags"`
	Resources []scalar     `yaml:"resources"`
}

type rawRule struct {
	At               pos           `yaml:"-"`
	Name             scalar        `yaml:"name" cfg:"required"`
	Schedule         scalar        `yaml:"schedule" cfg:"required"`
	Timezone         scalar        `yaml:"timezone"`
	StartWindow      scalar        `yaml:"start_window"`
	CompletionWindow scalar        `yaml:"completion_window"`
	Vault            scalar        `yaml:"vault" cfg:"required"`
	Retention        *rawRetention `yaml:"retention"`
	CopyTo           []rawCopy     `yaml:"copy_to"`
	Tags             omap[scalar]  `yaml:"tags"`
	Continuous       scalar        `yaml:"continuous"`
	PullFrom         scalar        `yaml:"pull_from"`
}

type rawRetention struct {
	At          pos      `yaml:"-"`
	KeepLast    scalar   `yaml:"keep_last"`
	KeepHourly  scalar   `yaml:"keep_hourly"`
	KeepDaily   scalar   `yaml:"keep_daily"`
	KeepWeekly  scalar   `yaml:"keep_weekly"`
	KeepMonthly scalar   `yaml:"keep_monthly"`
	KeepYearly  scalar   `yaml:"keep_yearly"`
	KeepWithin  scalar   `yaml:"keep_within"`
	KeepTags    []scalar `yaml:"keep_tags"`
	DeleteAfter scalar   `yaml:"delete_after"`
}

type rawCopy struct {
	At        pos           `yaml:"-"`
	Vault     scalar        `yaml:"vault" cfg:"required"`
	Retention *rawRetention `yaml:"retention"`
}

type rawAuth struct {
	At     pos        `yaml:"-"`
	Tokens []rawToken `yaml:"tokens"`
}

type rawToken struct {
	At        pos    `yaml:"-"`
	Name      scalar `yaml:"name" cfg:"required"`
	Role      scalar `yaml:"role" cfg:"required"`
	TokenFile scalar `yaml:"token_file" cfg:"required"`
}

type rawServer struct {
	At      pos    `yaml:"-"`
	Listen  scalar `yaml:"listen"`
	DataDir scalar `yaml:"data_dir"`
	Catalog scalar `yaml:"catalog"`
}
