{{/* Names, labels and the one pod spec shared by the Deployment, StatefulSet and DaemonSet. */}}

{{- define "portprobe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless the release name already has it. */}}
{{- define "portprobe.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "portprobe.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "portprobe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portprobe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portprobe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portprobe.labels" -}}
helm.sh/chart: {{ include "portprobe.chart" . }}
{{ include "portprobe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: portprobe
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "portprobe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portprobe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image.repository, its registry replaced by global.imageRegistry when that is set. */}}
{{- define "portprobe.imageRepository" -}}
{{- $repo := .Values.image.repository }}
{{- $registry := (.Values.global | default dict).imageRegistry | default "" | trimSuffix "/" }}
{{- if $registry }}
{{- $parts := splitList "/" $repo }}
{{- $first := first $parts }}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
{{- $repo = rest $parts | join "/" }}
{{- end }}
{{- $repo = printf "%s/%s" $registry $repo }}
{{- end }}
{{- $repo }}
{{- end }}

{{- define "portprobe.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" (include "portprobe.imageRepository" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" (include "portprobe.imageRepository" .) (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* The scheme the agent serves: https when webConfig says its web.yml configures TLS. */}}
{{- define "portprobe.scheme" -}}
{{- if and .Values.webConfig.enabled .Values.webConfig.tls }}https{{ else }}http{{ end }}
{{- end }}

{{/*
scheme, tlsConfig and basicAuth of a ServiceMonitor endpoint for the agent's web config; fails
when Prometheus would be left without what the agent asks of it.
*/}}
{{- define "portprobe.scrapeAuth" -}}
{{- $w := .Values.webConfig }}
scheme: {{ include "portprobe.scheme" . }}
{{- if $w.enabled }}
{{- if and $w.tls (not $w.scrapeTlsConfig) }}
{{- fail "webConfig.scrapeTlsConfig: the agent serves TLS; say how Prometheus verifies it, e.g. {ca: {secret: {name: portprobe-web-tls, key: ca.crt}}, serverName: portprobe} (or insecureSkipVerify: true)" }}
{{- end }}
{{- if and $w.authentication (not $w.scrapeBasicAuth) (not ($w.scrapeTlsConfig | default dict).cert) }}
{{- fail "webConfig.authentication: give Prometheus credentials: scrapeBasicAuth (from a Secret) or a client certificate in scrapeTlsConfig (cert, keySecret)" }}
{{- end }}
{{- with $w.scrapeTlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $w.scrapeBasicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Liveness or readiness check of the agent's port. Call with (dict "root" . "path" "/-/ready").
The kubelet speaks HTTPS without verifying, but it has no basic-auth password and no client
certificate: with webConfig.authentication the check is a TCP connect instead. The agent opens
its port only after its config loaded and closes it when it stops, which is what /-/ready tells.
*/}}
{{- define "portprobe.healthCheck" -}}
{{- $w := .root.Values.webConfig }}
{{- if and $w.enabled $w.authentication }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ .path }}
  port: http
  {{- if and $w.enabled $w.tls }}
  scheme: HTTPS
  {{- end }}
{{- end }}
{{- end }}

{{/*
Port ranges (active_listen.ports) of the FTP modules that test active mode, as NetworkPolicy
ports; fails for an active-mode module without a fixed range when a NetworkPolicy is rendered.
*/}}
{{- define "portprobe.activeModePorts" -}}
{{- $ports := list }}
{{- range $name, $module := (.Values.config.modules | default dict) }}
{{- if eq (toString (get $module "prober")) "ftp" }}
{{- $ftp := get $module "ftp" | default dict }}
{{- if has "active" (get $ftp "data_channel" | default list) }}
{{- $listen := get $ftp "active_listen" | default dict }}
{{- $range := get $listen "ports" | default "" | toString }}
{{- if not $range }}
{{- fail (printf "networkPolicy: module %q tests FTP active mode on a random port; set ftp.active_listen.ports (a range such as 30000-30009) so the NetworkPolicy can admit the server's connections back" $name) }}
{{- end }}
{{- $bounds := splitList "-" $range }}
{{- $p := dict "protocol" "TCP" "port" (first $bounds | int) }}
{{- if gt (len $bounds) 1 }}
{{- $_ := set $p "endPort" (last $bounds | int) }}
{{- end }}
{{- $ports = append $ports $p }}
{{- end }}
{{- end }}
{{- end }}
{{- if $ports }}
{{- toYaml (dict "ports" ($ports | uniq)) }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap the probing pods read. */}}
{{- define "portprobe.configMapName" -}}
{{- default (include "portprobe.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/* "true" when a module of the config uses the icmp prober (it needs NET_RAW). */}}
{{- define "portprobe.icmpEnabled" -}}
{{- $icmp := false }}
{{- range $name, $module := (.Values.config.modules | default dict) }}
{{- if eq (toString (get $module "prober")) "icmp" }}{{ $icmp = true }}{{ end }}
{{- end }}
{{- if $icmp }}true{{ end }}
{{- end }}

{{/* A sha256 of the rendered config, so pods roll when it changes. */}}
{{- define "portprobe.configChecksum" -}}
{{- toYaml .Values.config | sha256sum }}
{{- end }}

{{/*
The pod template of every workload. Call with a dict:
  root       the top-level context
  component  probe | sockets
  configMap  ConfigMap holding portprobe.yml
  port       container port
  shardCount set for StatefulSet pods: PORTPROBE_SHARD_COUNT, the index comes from POD_NAME
  checksum   config checksum annotation
*/}}
{{- define "portprobe.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $sockets := eq .component "sockets" }}
{{- $addCaps := list }}
{{- if and (not $sockets) (include "portprobe.icmpEnabled" $root) }}
{{- $addCaps = append $addCaps "NET_RAW" }}
{{- end }}
{{- $asRoot := and $sockets $v.daemonset.runAsRoot }}
{{- if and $asRoot $v.daemonset.hostPID }}
{{- $addCaps = concat $addCaps (list "SYS_PTRACE" "DAC_READ_SEARCH") }}
{{- end }}
metadata:
  labels:
    {{- include "portprobe.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ .checksum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "portprobe.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- if $sockets }}
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  hostPID: {{ $v.daemonset.hostPID }}
  {{- with $v.daemonset.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.daemonset.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.daemonset.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- else }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  securityContext:
    {{- if $asRoot }}
    {{- toYaml (merge (dict "runAsNonRoot" false "runAsUser" 0 "runAsGroup" 0) (omit $v.podSecurityContext "runAsNonRoot" "runAsUser" "runAsGroup")) | nindent 4 }}
    {{- else }}
    {{- toYaml $v.podSecurityContext | nindent 4 }}
    {{- end }}
  containers:
    - name: portprobe
      image: {{ include "portprobe.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - --config.file=/etc/portprobe/config/portprobe.yml
        - --web.listen-address=:{{ .port }}
        - --log.level={{ $v.log.level }}
        - --log.format={{ $v.log.format }}
        {{- if $v.webConfig.enabled }}
        - --web.config.file=/etc/portprobe/web/config/web.yml
        {{- end }}
        {{- range $v.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- if or .shardCount $v.extraEnv }}
      env:
        {{- if .shardCount }}
        - name: PORTPROBE_SHARD_COUNT
          value: {{ .shardCount | quote }}
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- with $v.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http
          containerPort: {{ .port }}
          protocol: TCP
      livenessProbe:
        {{- include "portprobe.healthCheck" (dict "root" $root "path" "/-/healthy") | nindent 8 }}
        {{- toYaml $v.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- include "portprobe.healthCheck" (dict "root" $root "path" "/-/ready") | nindent 8 }}
        {{- toYaml $v.readinessProbe | nindent 8 }}
      resources:
        {{- if $sockets }}
        {{- toYaml $v.daemonset.resources | nindent 8 }}
        {{- else }}
        {{- toYaml $v.resources | nindent 8 }}
        {{- end }}
      securityContext:
        {{- $sc := deepCopy $v.securityContext }}
        {{- if $asRoot }}
        {{- $_ := set $sc "runAsNonRoot" false }}
        {{- end }}
        {{- if $addCaps }}
        {{- $caps := deepCopy (default dict $sc.capabilities) }}
        {{- $_ := set $caps "add" (concat (default list $caps.add) $addCaps | uniq) }}
        {{- $_ := set $sc "capabilities" $caps }}
        {{- end }}
        {{- toYaml $sc | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/portprobe/config
          readOnly: true
        {{- if $sockets }}
        - name: host-proc
          mountPath: /host/proc
          readOnly: true
        {{- end }}
        {{- range $v.secretMounts }}
        {{- if or (eq (trimSuffix "/" .mountPath) "/etc/portprobe/config") (hasPrefix "/etc/portprobe/config/" .mountPath) }}
        {{- fail (printf "secretMounts: %s: mount secrets outside /etc/portprobe/config, e.g. under /etc/portprobe/secrets" .mountPath) }}
        {{- end }}
        - name: {{ .name }}
          mountPath: {{ .mountPath }}
          readOnly: true
        {{- end }}
        {{- if $v.webConfig.enabled }}
        - name: web-config
          mountPath: /etc/portprobe/web/config
          readOnly: true
        {{- if $v.webConfig.tlsSecretName }}
        - name: web-tls
          mountPath: /etc/portprobe/web/tls
          readOnly: true
        {{- end }}
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ .configMap }}
    {{- if $sockets }}
    - name: host-proc
      hostPath:
        path: /proc
        type: Directory
    {{- end }}
    {{- range $v.secretMounts }}
    - name: {{ .name }}
      secret:
        secretName: {{ .secretName }}
        defaultMode: 288 # 0440: owner and the fsGroup may read
        {{- with .items }}
        items:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
    {{- if $v.webConfig.enabled }}
    - name: web-config
      secret:
        secretName: {{ required "webConfig.secretName: the Secret holding web.yml" $v.webConfig.secretName }}
        defaultMode: 288 # 0440
        items:
          - key: web.yml
            path: web.yml
    {{- if $v.webConfig.tlsSecretName }}
    - name: web-tls
      secret:
        secretName: {{ $v.webConfig.tlsSecretName }}
        defaultMode: 288 # 0440
    {{- end }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* The DaemonSet's config: daemonset.config with the host's /proc and no remote targets. */}}
{{- define "portprobe.socketsConfig" -}}
{{- $cfg := deepCopy .Values.daemonset.config }}
{{- $sockets := default dict (get $cfg "sockets") }}
{{- if not (hasKey $sockets "enabled") }}{{ $_ := set $sockets "enabled" true }}{{ end }}
{{- $_ := set $sockets "procfs" "/host/proc" }}
{{- $_ := set $sockets "include_process" (and .Values.daemonset.hostPID .Values.daemonset.runAsRoot) }}
{{- $_ := set $cfg "sockets" $sockets }}
{{- toYaml $cfg }}
{{- end }}
