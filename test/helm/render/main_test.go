package main

// The harness stands in for helm, so its behaviour is pinned here to what helm documents and
// does: value merging, include/tpl/required/fail, toYaml/fromYaml, .Files with .helmignore,
// missing keys rendering empty, NOTES.txt kept apart and partials not rendered.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func baseChart(templates map[string]string) map[string]string {
	files := map[string]string{
		"Chart.yaml":       "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\n",
		"values.yaml":      "port: 9821\nlabels: {a: \"1\"}\nlist: [x, y]\nname: base\nnested: {keep: true, drop: 1}\n",
		".helmignore":      "# comment\nci/\n*.bak\n",
		"files/rules.yml":  "groups:\n  - name: g\n",
		"files/old.bak":    "ignored\n",
		"ci/x-values.yaml": "name: ci\n",
		"README.md":        "readme\n",
	}
	for k, v := range templates {
		files["templates/"+k] = v
	}
	return files
}

func renderOne(t *testing.T, templates map[string]string, valueFiles ...string) (*output, error) {
	t.Helper()
	dir := writeChart(t, baseChart(templates))
	var paths []string
	for i, v := range valueFiles {
		p := filepath.Join(dir, "override-"+string(rune('a'+i))+".yaml")
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return render(dir, "rel", "ns", "v1.30.0", paths, nil, nil)
}

func content(t *testing.T, out *output, name string) string {
	t.Helper()
	for _, m := range out.Manifests {
		if m.Source == "demo/templates/"+name {
			return m.Content
		}
	}
	t.Fatalf("no manifest %s in %+v", name, out.Manifests)
	return ""
}

func TestBuiltInObjects(t *testing.T) {
	out, err := renderOne(t, map[string]string{
		"a.yaml": "{{ .Release.Name }} {{ .Release.Namespace }} {{ .Release.Service }} {{ .Chart.Name }} {{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Template.Name }} {{ .Template.BasePath }} {{ .Capabilities.KubeVersion.Minor }} {{ .Capabilities.APIVersions.Has \"apps/v1\" }} {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" }}",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "rel ns Helm demo 1.2.3 4.5 demo/templates/a.yaml demo/templates 30 true false"
	if got := content(t, out, "a.yaml"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestValuesMergeLikeHelm(t *testing.T) {
	out, err := renderOne(t, map[string]string{"a.yaml": "{{ toYaml .Values }}"},
		"labels: {b: \"2\"}\nlist: [z]\nnested: {drop: null}\n", "name: last\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "labels:\n  a: \"1\"\n  b: \"2\"\nlist:\n- z\nname: last\nnested:\n  keep: true\nport: 9821"
	if got := content(t, out, "a.yaml"); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Numbers reach templates as float64, as helm's JSON round trip leaves them.
	if _, ok := out.Values["port"].(float64); !ok {
		t.Fatalf("port is %T, want float64", out.Values["port"])
	}
}

func TestIncludeTplRequiredFail(t *testing.T) {
	out, err := renderOne(t, map[string]string{
		"_helpers.tpl": "{{- define \"demo.name\" -}}{{ .Values.name | upper }}{{- end }}",
		"a.yaml":       "name: {{ include \"demo.name\" . | quote }}\ntpl: {{ tpl \"{{ .Values.name }}-{{ .Release.Name }}\" . }}\nmissing: [{{ .Values.nothing }}]\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "name: \"BASE\"\ntpl: base-rel\nmissing: []\n"
	if got := content(t, out, "a.yaml"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, tc := range []struct{ tpl, msg string }{
		{"{{ required \"name is required\" .Values.absent }}", "name is required"},
		{"{{ required \"empty is not enough\" \"\" }}", "empty is not enough"},
		{"{{ fail \"stop here\" }}", "stop here"},
		// As in helm: a missing key is empty, but a field of a missing key is an error.
		{"{{ .Values.nothing.here }}", "nil pointer evaluating interface {}.here"},
	} {
		_, err := renderOne(t, map[string]string{"a.yaml": tc.tpl})
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Fatalf("%s: got error %v, want %q", tc.tpl, err, tc.msg)
		}
	}
}

func TestYamlJsonFunctions(t *testing.T) {
	out, err := renderOne(t, map[string]string{
		"a.yaml": "{{ $r := .Files.Get \"files/rules.yml\" | fromYaml }}{{ (index $r.groups 0).name }} {{ (\"a: [\" | fromYaml).Error | empty | not }} {{ dict \"b\" 1 \"a\" (list 1 2) | toJson }} {{ (\"{\\\"k\\\": 2}\" | fromJson).k }}",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "g true {\"a\":[1,2],\"b\":1} 2"
	if got := content(t, out, "a.yaml"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFilesHonourHelmignore(t *testing.T) {
	out, err := renderOne(t, map[string]string{
		"a.yaml": "{{ range $k, $v := .Files }}{{ $k }} {{ end }}|{{ range $k, $v := .Files.Glob \"files/*\" }}{{ $k }} {{ end }}|{{ .Files.Get \"ci/x-values.yaml\" }}",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ".helmignore README.md files/rules.yml |files/rules.yml |"
	if got := content(t, out, "a.yaml"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestNotesAndPartialsAndEmptyOutput(t *testing.T) {
	out, err := renderOne(t, map[string]string{
		"_helpers.tpl": "{{- define \"x\" }}partial{{ end }}",
		"NOTES.txt":    "Installed {{ .Release.Name }}.",
		"empty.yaml":   "{{- if false }}kind: Nothing{{ end }}\n",
		"env.yaml":     "{{ if hasKey (dict) \"env\" }}{{ end }}ok",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Notes != "Installed rel." {
		t.Fatalf("notes %q", out.Notes)
	}
	if len(out.Manifests) != 1 || out.Manifests[0].Source != "demo/templates/env.yaml" {
		t.Fatalf("manifests %+v", out.Manifests)
	}
	// helm removes env and expandenv from sprig: templates must not read the environment.
	if _, err := renderOne(t, map[string]string{"a.yaml": "{{ env \"HOME\" }}"}); err == nil {
		t.Fatal("env is available to templates")
	}
}
