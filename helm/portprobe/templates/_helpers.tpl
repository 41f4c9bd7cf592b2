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

{{- define "portprobe.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
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
      ports:
        - name: http
          containerPort: {{ .port }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /-/healthy
          port: http
        {{- toYaml $v.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /-/ready
          port: http
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
        {{- else }}
        {{- range $v.secretMounts }}
        {{- if or (eq (trimSuffix "/" .mountPath) "/etc/portprobe/config") (hasPrefix "/etc/portprobe/config/" .mountPath) }}
        {{- fail (printf "secretMounts: %s: mount secrets outside /etc/portprobe/config, e.g. under /etc/portprobe/secrets" .mountPath) }}
        {{- end }}
        - name: {{ .name }}
          mountPath: {{ .mountPath }}
          readOnly: true
        {{- end }}
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
    {{- else }}
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
