// Command render renders a Helm chart the way `helm template` does, without helm: Go's
// text/template with sprig, plus small versions of the functions helm adds (include, tpl,
// required, fail, toYaml, fromYaml, toJson, fromJson, lookup) and of the built-in objects
// (.Values, .Release, .Chart, .Capabilities, .Files, .Template).
//
// Usage:
//
//	render -chart DIR [-values FILE]... [-set-string path=value]... [-name NAME] [-namespace NS]
//
// It prints one JSON object: {"values": merged values, "manifests": [{"source", "content"}],
// "notes": rendered NOTES.txt}. A template error exits 1 with the error on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	sprig "github.com/Masterminds/sprig"
	yamlv2 "gopkg.in/yaml.v2"
	yamlv3 "gopkg.in/yaml.v3"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type manifest struct {
	Source  string `json:"source"`
	Content string `json:"content"`
}

type output struct {
	Values    map[string]interface{} `json:"values"`
	Manifests []manifest             `json:"manifests"`
	Notes     string                 `json:"notes"`
}

func main() {
	chartDir := flag.String("chart", "", "chart directory")
	name := flag.String("name", "portprobe", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.30.0", "Kubernetes version for .Capabilities")
	var valueFiles, setStrings, apiVersions stringList
	flag.Var(&valueFiles, "values", "values file (repeatable, later files win)")
	flag.Var(&setStrings, "set-string", "path=value (repeatable)")
	flag.Var(&apiVersions, "api-versions", "extra API versions for .Capabilities.APIVersions (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		fatal(fmt.Errorf("-chart is required"))
	}
	out, err := render(*chartDir, *name, *namespace, *kubeVersion, valueFiles, setStrings, apiVersions)
	if err != nil {
		fatal(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "render: %v\n", err)
	os.Exit(1)
}

func render(chartDir, name, namespace, kubeVersion string, valueFiles, setStrings, apiVersions []string) (*output, error) {
	chartMeta, err := readYAMLFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	values, err := readYAMLFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range valueFiles {
		override, err := readYAMLFile(f)
		if err != nil {
			return nil, err
		}
		values = coalesce(override, values)
	}
	for _, s := range setStrings {
		eq := strings.IndexByte(s, '=')
		if eq < 1 {
			return nil, fmt.Errorf("-set-string %q: want path=value", s)
		}
		setPath(values, strings.Split(s[:eq], "."), s[eq+1:])
	}

	files, err := loadFiles(chartDir)
	if err != nil {
		return nil, err
	}
	chartName, _ := chartMeta["name"].(string)
	templateNames, root, err := parseTemplates(chartDir, chartName)
	if err != nil {
		return nil, err
	}

	chart := map[string]interface{}{
		"Name":        chartMeta["name"],
		"Version":     chartMeta["version"],
		"AppVersion":  chartMeta["appVersion"],
		"Description": chartMeta["description"],
		"Type":        chartMeta["type"],
	}
	release := map[string]interface{}{
		"Name": name, "Namespace": namespace, "Service": "Helm",
		"IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}
	versions := append([]string{"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"}, apiVersions...)
	capabilities := map[string]interface{}{
		"KubeVersion": map[string]interface{}{
			"Version": kubeVersion, "GitVersion": kubeVersion,
			"Major": strings.Split(strings.TrimPrefix(kubeVersion, "v"), ".")[0],
			"Minor": strings.Split(kubeVersion, ".")[1],
		},
		"APIVersions": apiVersionSet(versions),
	}

	out := &output{Values: values}
	for _, tn := range templateNames {
		base := path.Base(tn)
		if strings.HasPrefix(base, "_") {
			continue
		}
		top := map[string]interface{}{
			"Values": values, "Release": release, "Chart": chart, "Capabilities": capabilities,
			"Files":    files,
			"Template": map[string]interface{}{"Name": tn, "BasePath": path.Join(chartName, "templates")},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, tn, top); err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			out.Notes = text
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		out.Manifests = append(out.Manifests, manifest{Source: tn, Content: text})
	}
	return out, nil
}

// parseTemplates parses every file under templates/ into one template set, named as helm
// names them: "<chart>/templates/<file>".
func parseTemplates(chartDir, chartName string) ([]string, *template.Template, error) {
	root := template.New("chart").Option("missingkey=zero")
	funcs := funcMap(root)
	root.Funcs(funcs)
	var names []string
	dir := filepath.Join(chartDir, "templates")
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = path.Join(chartName, filepath.ToSlash(rel))
		text, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := root.New(rel).Parse(string(text)); err != nil {
			return err
		}
		names = append(names, rel)
		return nil
	})
	sort.Strings(names)
	return names, root, err
}

// funcMap is sprig's text functions minus env access, plus helm's own.
func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	includeDepth := 0
	f["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("include %q: too deep (recursion?)", name)
		}
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		if _, err := t.New("tpl").Parse(text); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		err = t.ExecuteTemplate(&buf, "tpl", data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, fmt.Errorf("%s", msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", fmt.Errorf("%s", msg) }
	f["toYaml"] = func(v interface{}) string {
		b, err := yamlv2.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m, err := parseYAML([]byte(s))
		if err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	f["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	// No cluster here: lookup finds nothing, as under `helm template`.
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

// Files is .Files: the chart's non-template files.
type Files map[string][]byte

// Get returns a file's content, or "" when it does not exist.
func (f Files) Get(name string) string { return string(f[name]) }

// Glob returns the files whose names match a path.Match pattern.
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for n, b := range f {
		if ok, _ := path.Match(pattern, n); ok {
			out[n] = b
		}
	}
	return out
}

// AsConfig renders the files as the data of a ConfigMap, keyed by base name.
func (f Files) AsConfig() string {
	m := map[string]string{}
	for n, b := range f {
		m[path.Base(n)] = string(b)
	}
	b, _ := yamlv2.Marshal(m)
	return strings.TrimSuffix(string(b), "\n")
}

// loadFiles reads what helm exposes as .Files: every file except the templates, Chart.yaml,
// values.yaml, values.schema.json and whatever .helmignore excludes.
func loadFiles(chartDir string) (Files, error) {
	ignore, err := readHelmignore(filepath.Join(chartDir, ".helmignore"))
	if err != nil {
		return nil, err
	}
	files := Files{}
	err = filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if info.IsDir() {
			if rel == "templates" || rel == "charts" || ignore.match(rel, true) {
				return filepath.SkipDir
			}
			return nil
		}
		switch rel {
		case "Chart.yaml", "values.yaml", "values.schema.json":
			return nil
		}
		if ignore.match(rel, false) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = b
		return nil
	})
	return files, err
}

// helmignore holds .helmignore patterns: one per line, # comments, a trailing / for
// directories only, globs matched against the whole relative path or the base name.
type helmignore []string

func readHelmignore(p string) (helmignore, error) {
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out helmignore
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, nil
}

func (h helmignore) match(rel string, isDir bool) bool {
	for _, pat := range h {
		dirOnly := strings.HasSuffix(pat, "/")
		pat = strings.TrimSuffix(pat, "/")
		if dirOnly && !isDir {
			continue
		}
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
		if ok, _ := path.Match(pat, path.Base(rel)); ok && !strings.Contains(pat, "/") {
			return true
		}
	}
	return false
}

type apiVersionSet []string

// Has reports whether an API version (group/version or group/version/Kind) is served.
func (a apiVersionSet) Has(v string) bool {
	for _, x := range a {
		if x == v || strings.HasPrefix(v, x+"/") {
			return true
		}
	}
	return false
}

// readYAMLFile reads YAML into the shapes helm gives templates: maps of string keys and
// float64 numbers (helm goes through JSON).
func readYAMLFile(p string) (map[string]interface{}, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m, err := parseYAML(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

func parseYAML(b []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yamlv3.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var m map[string]interface{}
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("top level must be a map: %w", err)
	}
	return m, nil
}

// coalesce merges src over dst like helm: maps merge key by key, anything else replaces,
// and a null in src deletes the key.
func coalesce(src, dst map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if v == nil {
			delete(out, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := out[k].(map[string]interface{})
		if sok && dok {
			out[k] = coalesce(sm, dm)
		} else {
			out[k] = v
		}
	}
	return out
}

func setPath(m map[string]interface{}, parts []string, value string) {
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = value
}
