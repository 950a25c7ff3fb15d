{{- define "edge-mirror.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "edge-mirror.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "edge-mirror.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "edge-mirror.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "edge-mirror.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edge-mirror.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "edge-mirror.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "edge-mirror.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "edge-mirror.image" -}}
{{- if and .Values.image.digest (not .Values.image.tag) }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{ with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}
{{- end }}

{{/* Every address of the pod: IPv4 only, or IPv6 and IPv4 ("[::]" is dual stack on Linux). */}}
{{- define "edge-mirror.anyAddress" -}}
{{- ternary "[::]" "0.0.0.0" (has .Values.ipFamily (list "IPv6" "DualStack")) }}
{{- end }}

{{/* The edge's TOML settings: the values' config, with the port and cache the chart decides. */}}
{{- define "edge-mirror.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $size := printf "%dMiB" (div (mul (int .Values.cache.sizeGiB) 1024 (int .Values.cache.usePercent)) 100) }}
{{- $_ := set $config "cache" (merge (dict "dir" "/var/cache/edge-mirror" "size" $size) (default (dict) $config.cache)) }}
{{- $_ := set $config "http" (merge (default (dict) $config.http) (dict "addr" (printf "%s:%d" (include "edge-mirror.anyAddress" .) (int .Values.port)) "metrics_addr" (printf "%s:%d" (include "edge-mirror.anyAddress" .) (int .Values.metricsPort)))) }}
{{- if .Values.admin.enabled }}
{{- $_ := set $config "admin" (dict "enabled" true) }}
{{- end }}
{{- if .Values.peers.enabled }}
{{- $_ := set $config "peers" (dict "dns" (include "edge-mirror.peersDns" .) "port" (int .Values.port) "refresh" .Values.peers.refresh "timeout" .Values.peers.timeout) }}
{{- end }}
{{- $upstreams := list }}
{{- range .Values.upstreams }}
{{- $upstreams = append $upstreams (pick . "ns" "url" "prefix" "default" "tag_ttl" "allowed_networks") }}
{{- end }}
{{- with $upstreams }}
{{- $_ := set $config "upstream" . }}
{{- end }}
{{- toToml $config }}
{{- end }}

{{/* The headless Service listing the ready edges of this release: the peers' DNS name. */}}
{{- define "edge-mirror.peersService" -}}
{{- printf "%s-peers" (include "edge-mirror.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "edge-mirror.peersDns" -}}
{{- printf "%s.%s.svc" (include "edge-mirror.peersService" .) .Release.Namespace }}
{{- end }}

{{- define "edge-mirror.peersSecret" -}}
{{- .Values.peers.existingSecret | default (printf "%s-peers" (include "edge-mirror.fullname" .)) }}
{{- end }}

{{- define "edge-mirror.adminSecret" -}}
{{- .Values.admin.existingSecret | default (printf "%s-admin" (include "edge-mirror.fullname" .)) }}
{{- end }}

{{- define "edge-mirror.upstreamSecret" -}}
{{- printf "%s-upstreams" (include "edge-mirror.fullname" .) }}
{{- end }}

{{/* nodeConfig.registries, then (with nodeConfig.upstreams) each upstream ns not listed there, its url as server. */}}
{{- define "edge-mirror.nodeRegistries" -}}
{{- $registries := list }}
{{- $hosts := list }}
{{- range .Values.nodeConfig.registries }}
{{- $registries = append $registries (ternary (printf "%s=%s" .host .server) .host (not (empty .server))) }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- if .Values.nodeConfig.upstreams }}
{{- range .Values.upstreams }}
{{- if not (has .ns $hosts) }}
{{- $registries = append $registries (printf "%s=%s" .ns .url) }}
{{- $hosts = append $hosts .ns }}
{{- end }}
{{- end }}
{{- end }}
{{- $image := include "edge-mirror.imageRegistry" . }}
{{- if and .Values.nodeConfig.enabled (has $image $hosts) (not .Values.nodeConfig.imageThroughEdge) }}
{{- fail (printf "image.repository is on %s, one of the registries nodeConfig points at the edge: a node whose edge is stalled could not pull the image that runs it. Push the image to another registry, or set nodeConfig.imageThroughEdge=true" $image) }}
{{- end }}
{{- toJson $registries }}
{{- end }}

{{- define "edge-mirror.s3Secret" -}}
{{- .Values.s3Credentials.existingSecret | default (printf "%s-s3" (include "edge-mirror.fullname" .)) }}
{{- end }}

{{- define "edge-mirror.authSecret" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if or .Values.auth.htpasswd .Values.auth.tokenRootCertBundle }}
{{- printf "%s-auth" (include "edge-mirror.fullname" .) }}
{{- end }}
{{- end }}

{{/* Arguments of node-config.py shared by write and restore. */}}
{{- define "edge-mirror.nodeConfigArgs" -}}
{{- range include "edge-mirror.nodeRegistries" . | fromJsonArray }}
- --registry
- {{ . | quote }}
{{- end }}
- --host-root
- /host
- --containerd-config
- {{ .Values.nodeConfig.containerdConfig | quote }}
- --override-file
- {{ .Values.nodeConfig.overrideFile | quote }}
{{- with .Values.nodeConfig.configPath }}
- --certs-dir
- {{ printf "/host%s" . | quote }}
{{- end }}
{{- end }}

{{- define "edge-mirror.nodeConfigVolumes" -}}
- name: host-containerd
  hostPath:
    path: {{ .Values.nodeConfig.hostDir }}
    type: DirectoryOrCreate
- name: node-config
  configMap:
    name: {{ include "edge-mirror.fullname" . }}
    items:
      {{- range $name := include "edge-mirror.nodeConfigFiles" . | fromJsonArray }}
      - key: {{ $name }}
        path: {{ $name }}
      {{- end }}
{{- end }}

{{- define "edge-mirror.nodeConfigMounts" -}}
- name: host-containerd
  mountPath: {{ printf "/host%s" .Values.nodeConfig.hostDir }}
- name: node-config
  mountPath: /opt/node-config
  readOnly: true
{{- end }}

{{/* Root, to write the node's root-owned certs.d; nothing else. */}}
{{- define "edge-mirror.rootInitSecurityContext" -}}
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
{{- end }}

{{/* The values' affinity; without a nodeAffinity of the user's, nodes of the image's architectures only and, with
excludeVirtualNodes, no virtual-kubelet or EKS Fargate node. */}}
{{- define "edge-mirror.affinity" -}}
{{- $affinity := deepCopy (default (dict) .Values.affinity) }}
{{- if not $affinity.nodeAffinity }}
{{- $expressions := list (dict "key" "kubernetes.io/arch" "operator" "In" "values" .Values.image.architectures) }}
{{- if .Values.excludeVirtualNodes }}
{{- $expressions = append $expressions (dict "key" "type" "operator" "NotIn" "values" (list "virtual-kubelet")) }}
{{- $expressions = append $expressions (dict "key" "eks.amazonaws.com/compute-type" "operator" "NotIn" "values" (list "fargate")) }}
{{- end }}
{{- $_ := set $affinity "nodeAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (dict "nodeSelectorTerms" (list (dict "matchExpressions" $expressions)))) }}
{{- end }}
{{- toYaml $affinity }}
{{- end }}

{{/* Where the edge's pods (and the uninstall hook's) may run: node selector, affinity, tolerations, priority. */}}
{{- define "edge-mirror.scheduling" -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  {{- include "edge-mirror.affinity" . | nindent 2 }}
{{- end }}

{{/* The registry host of image.repository, as containerd names it (docker.io for a name without a host). */}}
{{- define "edge-mirror.imageRegistry" -}}
{{- $first := splitList "/" .Values.image.repository | first }}
{{- if and (gt (len (splitList "/" .Values.image.repository)) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
{{- $first }}
{{- else }}
{{- "docker.io" }}
{{- end }}
{{- end }}

{{/* What the post-delete hook does on every node: "restore" (hosts.toml files) and/or "purge" (a hostPath cache). */}}
{{- define "edge-mirror.uninstallWork" -}}
{{- $work := list }}
{{- if and .Values.nodeConfig.enabled .Values.nodeConfig.restoreOnDelete }}
{{- $work = append $work "restore" }}
{{- end }}
{{- if and (eq .Values.cache.type "hostPath") .Values.cache.deleteOnUninstall }}
{{- $work = append $work "purge" }}
{{- end }}
{{- join "," $work }}
{{- end }}

{{/* node-config.py and the two modules it imports, as ConfigMap data. */}}
{{- define "edge-mirror.nodeConfigFiles" -}}
{{- toJson (list "node-config.py" "containerd_config.py" "restore_wait.py") }}
{{- end }}

{{- define "edge-mirror.nodeConfigScripts" -}}
{{- range $name := include "edge-mirror.nodeConfigFiles" . | fromJsonArray }}
{{ $name }}: |
  {{- $.Files.Get (printf "files/%s" $name) | nindent 2 }}
{{- end }}
{{- end }}
