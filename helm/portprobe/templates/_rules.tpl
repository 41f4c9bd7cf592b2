{{/*
The alert rule groups of files/portprobe-rules.yml with every prometheusRule setting applied
(disabledAlerts, additionalRuleLabels, runbookBaseUrl, forOverrides, certificateExpiryDays), then
prometheusRule.additionalRules. The one source of the PrometheusRule and of the Grafana-managed
alerts: every group of the file is taken, whatever its name. Renders {groups: [...]} as YAML.
*/}}
{{- define "portprobe.alertGroups" -}}
{{- $pr := .Values.prometheusRule }}
{{- $file := .Files.Get "files/portprobe-rules.yml" | fromYaml }}
{{- if hasKey $file "Error" }}{{ fail (printf "files/portprobe-rules.yml: %s" $file.Error) }}{{ end }}
{{- $days := $pr.certificateExpiryDays | default 14 }}
{{- $overrides := $pr.forOverrides | default dict }}
{{- $groups := list }}
{{- range $file.groups }}
{{- $rules := list }}
{{- range .rules }}
{{- if not (has (toString .alert) $pr.disabledAlerts) }}
{{- $rule := deepCopy . }}
{{- if $pr.additionalRuleLabels }}
{{- $_ := set $rule "labels" (merge (deepCopy $pr.additionalRuleLabels) (default dict $rule.labels)) }}
{{- end }}
{{- if and $pr.runbookBaseUrl $rule.annotations }}
{{- with $rule.annotations.runbook_url }}
{{- $_ := set $rule.annotations "runbook_url" (printf "%s#%s" ($pr.runbookBaseUrl | trimSuffix "/") (splitList "#" . | last)) }}
{{- end }}
{{- end }}
{{- if and $rule.alert (hasKey $overrides (toString $rule.alert)) }}
{{- $_ := set $rule "for" (get $overrides (toString $rule.alert)) }}
{{- end }}
{{- if eq (toString $rule.alert) "PortprobeTlsCertificateExpiringSoon" }}
{{- $expr := trim $rule.expr }}
{{- if not (regexMatch "<\\s*[0-9.]+$" $expr) }}
{{- fail "files/portprobe-rules.yml: PortprobeTlsCertificateExpiringSoon no longer ends in \"< DAYS\", so prometheusRule.certificateExpiryDays cannot set it" }}
{{- end }}
{{- $_ := set $rule "expr" (regexReplaceAll "<\\s*[0-9.]+$" $expr (printf "< %v" $days)) }}
{{- with $rule.annotations }}
{{- $_ := set $rule.annotations "description" (regexReplaceAll "[0-9.]+-day threshold" .description (printf "%v-day threshold" $days)) }}
{{- end }}
{{- end }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- end }}
{{- if $rules }}
{{- $group := deepCopy (omit . "rules") }}
{{- $_ := set $group "rules" $rules }}
{{- $groups = append $groups $group }}
{{- end }}
{{- end }}
{{- range $pr.additionalRules }}
{{- $group := deepCopy . }}
{{- $rules := list }}
{{- range (required "prometheusRule.additionalRules[]: each group needs rules" .rules) }}
{{- $rule := deepCopy . }}
{{- if and $rule.alert $pr.additionalRuleLabels }}
{{- $_ := set $rule "labels" (merge (deepCopy $pr.additionalRuleLabels) (default dict $rule.labels)) }}
{{- end }}
{{- if and $rule.alert (hasKey $overrides (toString $rule.alert)) }}
{{- $_ := set $rule "for" (get $overrides (toString $rule.alert)) }}
{{- end }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- $_ := set $group "rules" $rules }}
{{- $groups = append $groups $group }}
{{- end }}
{{- toYaml (dict "groups" $groups) }}
{{- end }}
