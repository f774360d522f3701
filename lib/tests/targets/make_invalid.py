#!/usr/bin/python3
# Writes invalid.yaml and invalid.expect.yaml (zerowire target-model test data) from the table
# below, so each invalid object sits next to its exact error message. The generated files are
# committed; edit this table and rerun (`/usr/bin/python3 make_invalid.py` in this directory).
import yaml

AW_EXPECT = ('expected ingress, httproute, grpcroute, virtualservice, gloo, route, service, '
             'true or false')
DUR = 'is not a duration (e.g. 30s, 1m, 1h30m)'
PATHCHARS = "it contains a space, control character, '?' or '#'"


def patch(base, changes):
    out = dict(base)
    for k, v in (changes or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def so(name, meta=None, spec=None, typ='kedify-http', triggers=None):
    m = patch({'service': 'app', 'port': '8080', 'scalingMetric': 'requestRate'}, meta)
    o = {'apiVersion': 'keda.sh/v1alpha1', 'kind': 'ScaledObject',
         'metadata': {'name': name, 'namespace': 'default'},
         'spec': {'scaleTargetRef': {'name': 'app'},
                  'triggers': triggers if triggers is not None else [{'type': typ, 'metadata': m}]}}
    o['spec'] = patch(o['spec'], spec)
    return o


def hso(name, spec_patch=None, ref_patch=None, ann=None, api='http.keda.sh/v1alpha1'):
    ref = patch({'name': 'app', 'service': 'app', 'port': 8080}, ref_patch)
    spec = patch({'hosts': ['app.example.com'], 'scaleTargetRef': ref}, spec_patch)
    o = {'apiVersion': api, 'kind': 'HTTPScaledObject',
         'metadata': {'name': name, 'namespace': 'default'}, 'spec': spec}
    if ann is not None:
        o['metadata']['annotations'] = ann
    return o


def ir(name, spec_patch=None, api='http.keda.sh/v1beta1'):
    spec = patch({'target': {'service': 'app', 'port': 8080},
                  'rules': [{'hosts': ['app.example.com']}],
                  'scalingMetric': {'concurrency': {'targetValue': 10}}}, spec_patch)
    return {'apiVersion': api, 'kind': 'InterceptorRoute',
            'metadata': {'name': name, 'namespace': 'default'}, 'spec': spec}


def with_(obj, **kw):
    obj = dict(obj)
    obj.update(kw)
    return obj


T = 'ScaledObject default/{} trigger 0: '
H = 'HTTPScaledObject default/{}: '
I = 'InterceptorRoute default/{}: '
S = 'ScaledObject default/{}: '
PREFIX = 'prefix:'  # marks an expected message prefix (the rest comes from lib/yamljson)

cases = [
    # ---- ScaledObject trigger metadata ----
    (so('podinfo', {'port': 'abc'}), T + 'metadata.port "abc" is not a port number'),
    (so('port-zero', {'port': '0'}), T + 'metadata.port "0" is not a port number'),
    (so('port-big', {'port': 70000}), T + 'metadata.port "70000" is not a port number'),
    (so('port-negative', {'port': '-80'}), T + 'metadata.port "-80" is not a port number'),
    (so('port-and-name', {'portName': 'http'}),
     T + 'metadata.port and metadata.portName are both set (exactly one is allowed)'),
    (so('no-port', {'port': None}), T + 'metadata.port or metadata.portName is required'),
    (so('blank-port', {'port': '  '}), T + 'metadata.port or metadata.portName is required'),
    (so('bad-port-name', {'port': None, 'portName': 'HTTP_1'}),
     T + 'metadata.portName "HTTP_1" is not a valid port name'),
    (so('no-service', {'service': None}), T + 'metadata.service is required'),
    (so('rollout-no-service', {'service': None},
        spec={'scaleTargetRef': {'apiVersion': 'argoproj.io/v1alpha1', 'kind': 'Rollout', 'name': 'app'}}),
     T + 'metadata.service is required (zerowire does not read it from the Argo Rollout)'),
    (so('bad-service', {'service': 'My_Svc'}),
     T + 'metadata.service "My_Svc" is not a valid Service name'),
    (so('no-metric', {'scalingMetric': None}),
     T + 'metadata.scalingMetric is required (requestRate or concurrency)'),
    (so('bad-metric', {'scalingMetric': 'rps'}),
     T + 'metadata.scalingMetric "rps" must be requestRate or concurrency'),
    (so('bad-target', {'targetValue': '-1'}), T + 'metadata.targetValue "-1" is not a positive number'),
    (so('zero-target', {'targetValue': 0}), T + 'metadata.targetValue "0" is not a positive number'),
    (so('nan-target', {'targetValue': 'nan'}), T + 'metadata.targetValue "nan" is not a positive number'),
    (so('bad-window', {'window': '1 minute'}), T + 'metadata.window "1 minute" ' + DUR),
    (so('neg-granularity', {'granularity': '-1s'}), T + 'metadata.granularity "-1s" ' + DUR),
    (so('zero-window', {'window': '0s'}), T + 'metadata.window must be greater than 0'),
    (so('window-lt-gran', {'window': '1s', 'granularity': '10s'}),
     T + 'metadata.window (1000ms) is shorter than metadata.granularity (10000ms)'),
    (so('too-many-buckets', {'window': '2h', 'granularity': '1s'}),
     T + 'metadata.window / metadata.granularity gives more than 3600 buckets'),
    (so('bad-autowire', {'trafficAutowire': 'ingress,openshift'}),
     T + 'metadata.trafficAutowire "ingress,openshift": unknown kind "openshift" (' + AW_EXPECT + ')'),
    (so('false-mixed', {'trafficAutowire': 'false, ingress'}),
     T + 'metadata.trafficAutowire "false, ingress": "false" cannot be combined with other kinds'),
    (so('headers-not-list', {'headers': 'just a string'}),
     T + 'metadata.headers must be a YAML list of name/value entries, not a string'),
    (so('headers-two-docs', {'headers': '- name: a\n---\n- name: b\n'}),
     T + 'metadata.headers must be one YAML document, not 2'),
    (so('header-no-name', {'headers': '- value: x\n'}), T + 'metadata.headers[0].name is required'),
    (so('header-list-item', {'headers': '- X-Foo\n'}),
     T + 'metadata.headers[0] must be a map with name and value, not a string'),
    (so('header-bad-name', {'headers': "- name: 'a b'\n  value: x\n"}),
     T + 'metadata.headers[0].name "a b" is not a valid header name'),
    (so('header-bad-value', {'headers': '- name: X-A\n  value: "a\\nb"\n'}),
     T + 'metadata.headers[0].value "a?b" is not a valid header value'),
    (so('header-value-list', {'headers': '- name: X-A\n  value: [1, 2]\n'}),
     T + 'metadata.headers[0].value must be a string, not an array'),
    (so('header-twice', {'headers': '- name: X-A\n- name: x-a\n'}),
     T + 'metadata.headers[1].name "x-a" is listed twice'),
    (so('headers-yaml', {'headers': '- name: [x\n'}), PREFIX + T + 'metadata.headers is not valid YAML: '),
    (so('header-two-values', {'headers': '- name: X-A\n  value: a\n  valueRegex: a.*\n'}),
     T + 'metadata.headers[0]: at most one of value, valueWildcard or valueRegex may be set'),
    (so('header-bad-regex', {'headers': '- name: X-A\n  valueRegex: "(?i)abc"\n'}),
     PREFIX + T + 'metadata.headers[0].valueRegex "(?i)abc" is not a supported regular expression: '),
    (so('header-unbalanced-regex', {'headers': '- name: X-A\n  valueRegex: "a(b"\n'}),
     PREFIX + T + 'metadata.headers[0].valueRegex "a(b" is not a supported regular expression: '),
    (so('header-negated-in-brackets', {'headers': '- name: X-A\n  valueRegex: "[\\\\D]"\n'}),
     PREFIX + T + 'metadata.headers[0].valueRegex "[\\D]" is not a supported regular expression: '),
    (so('ph-header-pattern', {'placeholderHeaders': '- name: Refresh\n  valueWildcard: "5*"\n'}),
     T + 'metadata.placeholderHeaders[0]: a response header takes value, not a pattern'),
    (so('hosts-bad', {'hosts': 'ok.example.com, foo bar.com'}),
     T + 'metadata.hosts "foo bar.com" is not a valid host: it contains a character that is not '
     'allowed in a host'),
    (so('host-wild-mid', {'hosts': 'foo.*.com'}),
     T + 'metadata.hosts "foo.*.com" is not a valid host: it has a wildcard other than a leading "*."'),
    (so('host-wild-bare', {'hosts': '*.'}),
     T + 'metadata.hosts "*." is not a valid host: it has a wildcard other than a leading "*."'),
    (so('host-bad-port', {'hosts': 'example.com:http'}),
     T + 'metadata.hosts "example.com:http" is not a valid host: it has a port that is not a number'),
    (so('host-port-only', {'hosts': ':80'}), T + 'metadata.hosts ":80" is not a valid host: it is empty'),
    (so('host-v6-junk', {'hosts': '[::1]x'}),
     T + 'metadata.hosts "[::1]x" is not a valid host: it has a bad port after the IPv6 address'),
    (so('host-path', {'hosts': 'example.com/api'}),
     T + 'metadata.hosts "example.com/api" is not a valid host: it contains a character that is '
     'not allowed in a host'),
    (so('path-bad', {'pathPrefixes': '/ok,/a b'}),
     T + 'metadata.pathPrefixes "/a b" is not a valid path prefix: ' + PATHCHARS),
    (so('path-query', {'pathPrefixes': '/a?b=1'}),
     T + 'metadata.pathPrefixes "/a?b=1" is not a valid path prefix: ' + PATHCHARS),
    (so('metadata-list', {'hosts': ['a.example.com']}), T + 'metadata.hosts must be a string, not an array'),
    (so('metadata-map', {'port': {'number': 80}}), T + 'metadata.port must be a string, not an object'),
    (so('hc-response-no-path', {'healthcheckResponse': 'static'}),
     T + 'metadata.healthcheckResponse "static" needs metadata.healthcheckPath'),
    (so('hc-bad', {'healthcheckPath': '/hc', 'healthcheckResponse': 'probe'}),
     T + 'metadata.healthcheckResponse "probe" must be passthrough, static or pathEmbeddedHost'),
    (so('hc-embedded-no-prefix', {'healthcheckPath': '/hc', 'healthcheckResponse': 'pathEmbeddedHost'}),
     T + 'metadata.healthcheckResponse pathEmbeddedHost needs metadata.healthcheckPathPrefix'),
    (so('hc-prefix-static', {'healthcheckPathPrefix': '/kedify-proxy/a', 'healthcheckResponse': 'static'}),
     T + 'metadata.healthcheckResponse "static" needs metadata.healthcheckPath'),
    (so('hc-both', {'healthcheckPath': '/hc', 'healthcheckPathPrefix': '/kedify-proxy/a'}),
     T + 'metadata.healthcheckPath and metadata.healthcheckPathPrefix are both set (exactly one is allowed)'),
    (so('hc-prefix-bad', {'healthcheckPathPrefix': '/k p'}),
     T + 'metadata.healthcheckPathPrefix "/k p" is not a valid path: ' + PATHCHARS),
    (so('hc-prefix-root', {'healthcheckPathPrefix': '/'}),
     T + 'metadata.healthcheckPathPrefix "/" would make every path a health probe (use e.g. /kedify-proxy)'),
    (so('waiting-cm-bad', {'coldStartWaitingPageEnabled': 'true', 'coldStartWaitingPageConfigMapRef': 'Page_1'}),
     T + 'metadata.coldStartWaitingPageConfigMapRef "Page_1" is not a valid ConfigMap name'),
    (so('waiting-cm-and-body', {'coldStartWaitingPageEnabled': 'true', 'coldStartWaitingPageConfigMapRef': 'page',
                                'placeholderBody': 'x'}),
     T + 'metadata.placeholderBody and metadata.coldStartWaitingPageConfigMapRef are both set (at most one is allowed)'),
    (so('hc-path-bad', {'healthcheckPath': '/h c'}),
     T + 'metadata.healthcheckPath "/h c" is not a valid path: ' + PATHCHARS),
    (so('bad-readiness', {'readinessTimeout': 'soon'}), T + 'metadata.readinessTimeout "soon" ' + DUR),
    (so('bad-request-timeout', {'requestTimeout': '-1s'}), T + 'metadata.requestTimeout "-1s" ' + DUR),
    (so('bad-header-timeout', {'responseHeaderTimeout': '5 s'}),
     T + 'metadata.responseHeaderTimeout "5 s" ' + DUR),
    (so('bad-max-pending', {'maxPendingRequests': '0'}),
     T + 'metadata.maxPendingRequests "0" is not a number in 1..1000000'),
    (so('huge-max-pending', {'maxPendingRequests': '1000001'}),
     T + 'metadata.maxPendingRequests "1000001" is not a number in 1..1000000'),
    (so('bad-endpoint-concurrency', {'endpointConcurrency': 'lots'}),
     T + 'metadata.endpointConcurrency "lots" is not a number in 0..1000000, auto or off'),
    (so('huge-endpoint-concurrency', {'endpointConcurrency': '1000001'}),
     T + 'metadata.endpointConcurrency "1000001" is not a number in 0..1000000, auto or off'),
    (so('bad-slow-start', {'slowStart': 'soon'}),
     T + 'metadata.slowStart "soon" ' + DUR),
    (so('overflow-no-placeholder', {'overflow': 'Placeholder'}),
     T + 'metadata.overflow Placeholder needs a placeholder (placeholderBody, placeholderStatusCode '
     'or coldStartWaitingPageEnabled)'),
    (so('bad-overflow', {'overflow': 'Drop'}), T + 'metadata.overflow "Drop" must be Reject or Placeholder'),
    (so('bad-status', {'placeholderStatusCode': '99'}),
     T + 'metadata.placeholderStatusCode "99" is not an HTTP status (100..599)'),
    (so('bad-waiting', {'coldStartWaitingPageEnabled': 'yes'}),
     T + 'metadata.coldStartWaitingPageEnabled "yes" must be true or false'),
    (so('ph-headers-bad', {'placeholderHeaders': 'Refresh:\n'}),
     T + 'metadata.placeholderHeaders["Refresh"] needs a value'),
    (so('ph-headers-yaml', {'placeholderHeaders': 'a: [1'}),
     PREFIX + T + 'metadata.placeholderHeaders is not valid YAML: '),
    (so('fallback-port-alone', {'fallbackPort': '80'}),
     T + 'metadata.fallbackPort/fallbackPortName need metadata.fallbackService'),
    (so('bad-fallback-name', {'fallbackService': 'Fall_back'}),
     T + 'metadata.fallbackService "Fall_back" is not a valid Service name'),
    (so('bad-fallback-port', {'fallbackService': 'fb', 'fallbackPort': 'x'}),
     T + 'metadata.fallbackPort "x" is not a port number'),
    (so('ext-push-mixed', {'interceptorRoute': 'r'}, typ='external-push'),
     T + 'metadata.service cannot be combined with metadata.interceptorRoute'),
    (so('ext-push-hso-mixed', {'httpScaledObject': 'h'}, typ='external-push'),
     T + 'metadata.service cannot be combined with metadata.httpScaledObject'),
    (so('kedify-meta-string', triggers=[{'type': 'kedify-http', 'metadata': 'x'}]),
     T + 'metadata must be an object, not a string'),
    (so('kedify-no-meta', triggers=[{'type': 'kedify-http'}]), T + 'metadata is required'),
    (so('second-trigger-bad', triggers=[
        {'type': 'cpu', 'metadata': {'value': '50'}},
        {'type': 'kedify-http',
         'metadata': {'service': 'app', 'port': 'eighty', 'scalingMetric': 'concurrency'}}]),
     'ScaledObject default/{} trigger 1: metadata.port "eighty" is not a port number'),
    # ---- ScaledObject structure ----
    (with_(so('spec-array'), spec=[]), S + 'spec must be an object, not an array'),
    ({'apiVersion': 'keda.sh/v1alpha1', 'kind': 'ScaledObject', 'metadata': {'name': 'no-spec'}},
     S + 'spec is required'),
    (so('triggers-object', triggers={}), S + 'spec.triggers must be an array, not an object'),
    (so('trigger-string', triggers=['kedify-http']), S + 'spec.triggers[0] must be an object, not a string'),
    (so('trigger-type-number', triggers=[{'type': 7}]),
     S + 'spec.triggers[0].type must be a string, not an integer'),
    (so('no-scaletarget', spec={'scaleTargetRef': None}), S + 'spec.scaleTargetRef is required'),
    (so('scaletarget-noname', spec={'scaleTargetRef': {'kind': 'Deployment'}}),
     S + 'spec.scaleTargetRef.name is required'),
    (so('min-gt-max', spec={'minReplicaCount': 5, 'maxReplicaCount': 2}),
     S + 'spec.minReplicaCount 5 is greater than spec.maxReplicaCount 2'),
    (so('min-string', spec={'minReplicaCount': '1'}), S + 'spec.minReplicaCount must be an integer, not a string'),
    (so('min-negative', spec={'minReplicaCount': -1}), S + 'spec.minReplicaCount -1 must be at least 0'),
    (so('max-real', spec={'maxReplicaCount': 2.5}), S + 'spec.maxReplicaCount must be an integer, not a number'),
    (with_(so('so-version'), apiVersion='keda.sh/v1beta9'),
     S + 'apiVersion keda.sh/v1beta9 is not supported (keda.sh/v1alpha1 is)'),
    (with_(so('x'), metadata={'namespace': 'apps'}), 'ScaledObject apps/?: metadata.name is required'),
    (with_(so('x'), metadata={'name': 5}), 'ScaledObject default/?: metadata.name must be a string, not an integer'),
    (with_(so('x'), metadata={'name': 'ns-number', 'namespace': 3}),
     'ScaledObject default/?: metadata.namespace must be a string, not an integer'),
    # ---- HTTPScaledObject ----
    (with_(hso('hso-spec-array'), spec=[]), H + 'spec must be an object, not an array'),
    (hso('hso-hosts-number', {'hosts': 5}), H + 'spec.hosts must be an array, not an integer'),
    (hso('hso-host-item-number', {'hosts': [5]}), H + 'spec.hosts[0] must be a string, not an integer'),
    (hso('hso-host-bad', {'hosts': ['a.example.com', 'b.com:x']}),
     H + 'spec.hosts[1] "b.com:x" is not a valid host: it has a port that is not a number'),
    (hso('hso-paths-string', {'pathPrefixes': '/api'}), H + 'spec.pathPrefixes must be an array, not a string'),
    (hso('hso-no-ref', {'scaleTargetRef': None}), H + 'spec.scaleTargetRef is required'),
    (hso('hso-no-service', ref_patch={'service': None}), H + 'spec.scaleTargetRef.service is required'),
    (hso('hso-bad-service', ref_patch={'service': 'App'}),
     H + 'spec.scaleTargetRef.service "App" is not a valid Service name'),
    (hso('hso-both-ports', ref_patch={'portName': 'http'}),
     H + 'spec.scaleTargetRef.port and spec.scaleTargetRef.portName are both set (exactly one is allowed)'),
    (hso('hso-no-port', ref_patch={'port': None}),
     H + 'spec.scaleTargetRef.port or spec.scaleTargetRef.portName is required'),
    (hso('hso-port-string', ref_patch={'port': '80'}),
     H + 'spec.scaleTargetRef.port must be an integer, not a string'),
    (hso('hso-port-range', ref_patch={'port': 0}), H + 'spec.scaleTargetRef.port 0 is not a port number'),
    (hso('hso-no-name', ref_patch={'name': None}), H + 'spec.scaleTargetRef.name is required'),
    (hso('hso-both-metrics', {'scalingMetric': {'concurrency': {}, 'requestRate': {}}}),
     H + 'spec.scalingMetric: concurrency and requestRate are mutually exclusive'),
    (hso('hso-bad-window', {'scalingMetric': {'requestRate': {'window': '1x'}}}),
     H + 'spec.scalingMetric.requestRate.window "1x" ' + DUR),
    (hso('hso-window-number', {'scalingMetric': {'requestRate': {'window': 60}}}),
     H + 'spec.scalingMetric.requestRate.window must be a string, not an integer'),
    (hso('hso-target-zero', {'scalingMetric': {'concurrency': {'targetValue': 0}}}),
     H + 'spec.scalingMetric.concurrency.targetValue 0 must be at least 1'),
    (hso('hso-metric-list', {'scalingMetric': ['concurrency']}),
     H + 'spec.scalingMetric must be an object, not an array'),
    (hso('hso-failover-no-port', {'coldStartTimeoutFailoverRef': {'service': 'fb'}}),
     H + 'spec.coldStartTimeoutFailoverRef.port or spec.coldStartTimeoutFailoverRef.portName is required'),
    (hso('hso-failover-no-service', {'coldStartTimeoutFailoverRef': {'port': 80}}),
     H + 'spec.coldStartTimeoutFailoverRef.service is required'),
    (hso('hso-failover-negative',
         {'coldStartTimeoutFailoverRef': {'service': 'fb', 'port': 80, 'timeoutSeconds': -1}}),
     H + 'spec.coldStartTimeoutFailoverRef.timeoutSeconds -1 must be at least 0'),
    (hso('hso-replicas', {'replicas': {'min': 3, 'max': 1}}),
     H + 'spec.replicas.min 3 is greater than spec.replicas.max 1'),
    (hso('hso-replicas-string', {'replicas': {'max': '10'}}),
     H + 'spec.replicas.max must be an integer, not a string'),
    (hso('hso-header-noname', {'headers': [{'value': 'x'}]}), H + 'spec.headers[0].name is required'),
    (hso('hso-header-wild-number', {'headers': [{'name': 'X-A', 'valueWildcard': 5}]}),
     H + 'spec.headers[0].valueWildcard must be a string, not an integer'),
    (hso('hso-header-two', {'headers': [{'name': 'X-A', 'valueWildcard': 'a*', 'valueRegex': 'a.*'}]}),
     H + 'spec.headers[0]: at most one of value, valueWildcard or valueRegex may be set'),
    (hso('hso-header-object', {'headers': {'X-A': 'b'}}), H + 'spec.headers must be an array, not an object'),
    (hso('hso-pending-zero', {'targetPendingRequests': 0}),
     H + 'spec.targetPendingRequests 0 must be at least 1'),
    (hso('hso-scaledown', {'scaledownPeriod': -5}), H + 'spec.scaledownPeriod -5 must be at least 0'),
    (hso('hso-timeouts-bad', {'timeouts': {'conditionWait': '-5s'}}),
     H + 'spec.timeouts.conditionWait "-5s" ' + DUR),
    (hso('hso-timeouts-list', {'timeouts': []}), H + 'spec.timeouts must be an object, not an array'),
    (hso('hso-bad-autowire', ann={'http.kedify.io/traffic-autowire': 'nope'}),
     H + 'metadata.annotations.http.kedify.io/traffic-autowire "nope": unknown kind "nope" ('
     + AW_EXPECT + ')'),
    (hso('hso-annotation-bool', ann={'httpscaledobject.keda.sh/skip-scaledobject-creation': True}),
     H + 'metadata.annotations.httpscaledobject.keda.sh/skip-scaledobject-creation must be a '
     'string, not a boolean'),
    (hso('hso-annotations-list', ann=['a']), H + 'metadata.annotations must be an object, not an array'),
    (hso('hso-bad-version', api='http.keda.sh/v2'),
     H + 'apiVersion http.keda.sh/v2 is not supported (http.keda.sh/v1alpha1 is)'),
    (with_(hso('x'), metadata=[]), 'HTTPScaledObject default/?: metadata must be an object, not an array'),
    ({'apiVersion': 'http.keda.sh/v1alpha1', 'kind': 'HTTPScaledObject', 'spec': {}},
     'HTTPScaledObject default/?: metadata is required'),
    # ---- InterceptorRoute ----
    (ir('ir-no-target', {'target': None}), I + 'spec.target is required'),
    (ir('ir-target-string', {'target': 'app:8080'}), I + 'spec.target must be an object, not a string'),
    (ir('ir-no-metric', {'scalingMetric': None}), I + 'spec.scalingMetric is required'),
    (ir('ir-empty-metric', {'scalingMetric': {}}),
     I + 'spec.scalingMetric needs concurrency or requestRate (or both)'),
    (ir('ir-rate-no-target', {'scalingMetric': {'requestRate': {'window': '1m'}}}),
     I + 'spec.scalingMetric.requestRate.targetValue is required'),
    (ir('ir-conc-no-target', {'scalingMetric': {'concurrency': {}}}),
     I + 'spec.scalingMetric.concurrency.targetValue is required'),
    (ir('ir-conc-zero', {'scalingMetric': {'concurrency': {'targetValue': 0}}}),
     I + 'spec.scalingMetric.concurrency.targetValue 0 must be at least 1'),
    (ir('ir-gran-bad', {'scalingMetric': {'requestRate': {'targetValue': 1, 'granularity': '0s'}}}),
     I + 'spec.scalingMetric.requestRate.granularity must be greater than 0'),
    (ir('ir-both-ports', {'target': {'service': 'app', 'port': 80, 'portName': 'http'}}),
     I + 'spec.target.port and spec.target.portName are both set (exactly one is allowed)'),
    (ir('ir-port-big', {'target': {'service': 'app', 'port': 65536}}),
     I + 'spec.target.port 65536 is not a port number'),
    (ir('ir-service-empty', {'target': {'service': '', 'port': 80}}), I + 'spec.target.service is required'),
    (ir('ir-rules-object', {'rules': {}}), I + 'spec.rules must be an array, not an object'),
    (ir('ir-rule-string', {'rules': ['app.example.com']}), I + 'spec.rules[0] must be an object, not a string'),
    (ir('ir-path-novalue', {'rules': [{'paths': [{}]}]}), I + 'spec.rules[0].paths[0].value is required'),
    (ir('ir-paths-strings', {'rules': [{'paths': ['/a']}]}),
     I + 'spec.rules[0].paths[0] must be an object, not a string'),
    (ir('ir-path-bad', {'rules': [{'paths': [{'value': '/a#b'}]}]}),
     I + 'spec.rules[0].paths[0].value "/a#b" is not a valid path prefix: ' + PATHCHARS),
    (ir('ir-host-bad', {'rules': [{'hosts': ['ok.com']}, {'hosts': ['*bad.com']}]}),
     I + 'spec.rules[1].hosts[0] "*bad.com" is not a valid host: it has a wildcard other than a '
     'leading "*."'),
    (ir('ir-dup-header', {'rules': [{'headers': [{'name': 'X-A'}, {'name': 'x-a'}]}]}),
     I + 'spec.rules[0].headers[1].name "x-a" is listed twice'),
    (ir('ir-header-value-number', {'rules': [{'headers': [{'name': 'X-A', 'value': 1}]}]}),
     I + 'spec.rules[0].headers[0].value must be a string, not an integer'),
    (ir('ir-coldstart-empty', {'coldStart': {}}),
     I + 'spec.coldStart needs at least one of fallback, placeholder or maxPendingRequests'),
    (ir('ir-overflow-no-ph', {'coldStart': {'maxPendingRequests': 5, 'overflow': 'Placeholder'}}),
     I + 'spec.coldStart.overflow Placeholder needs spec.coldStart.placeholder'),
    (ir('ir-bad-overflow', {'coldStart': {'maxPendingRequests': 5, 'overflow': 'Drop'}}),
     I + 'spec.coldStart.overflow "Drop" must be Reject or Placeholder'),
    (ir('ir-max-pending', {'coldStart': {'maxPendingRequests': 0}}),
     I + 'spec.coldStart.maxPendingRequests 0 is out of range (1..1000000)'),
    (ir('ir-status', {'coldStart': {'placeholder': {'response': {'statusCode': 600}}}}),
     I + 'spec.coldStart.placeholder.response.statusCode 600 is out of range (100..599)'),
    (ir('ir-body-both', {'coldStart': {'placeholder': {'response': {
        'body': 'x', 'bodyFromConfigMap': {'name': 'cm'}}}}}),
     I + 'spec.coldStart.placeholder.response: at most one of body or bodyFromConfigMap may be set'),
    (ir('ir-body-cm-noname', {'coldStart': {'placeholder': {'response': {
        'bodyFromConfigMap': {'key': 'k'}}}}}),
     I + 'spec.coldStart.placeholder.response.bodyFromConfigMap.name is required'),
    (ir('ir-body-cm-badname', {'coldStart': {'placeholder': {'response': {
        'bodyFromConfigMap': {'name': 'Page_1'}}}}}),
     I + 'spec.coldStart.placeholder.response.bodyFromConfigMap.name "Page_1" is not a valid ConfigMap name'),
    (ir('ir-body-cm-badkey', {'coldStart': {'placeholder': {'response': {
        'bodyFromConfigMap': {'name': 'page', 'key': 'a/b.html'}}}}}),
     I + 'spec.coldStart.placeholder.response.bodyFromConfigMap.key "a/b.html" is not a valid ConfigMap key'),
    (ir('ir-body-long', {'coldStart': {'placeholder': {'response': {'body': 'x' * 32769}}}}),
     I + 'spec.coldStart.placeholder.response.body is longer than 32768 bytes'),
    (ir('ir-ph-no-response', {'coldStart': {'placeholder': {}}}),
     I + 'spec.coldStart.placeholder.response is required'),
    (ir('ir-fallback-no-service', {'coldStart': {'fallback': {}}}),
     I + 'spec.coldStart.fallback.service is required'),
    (ir('ir-fallback-name', {'coldStart': {'fallback': {'service': {'port': 80}}}}),
     I + 'spec.coldStart.fallback.service.name is required'),
    (ir('ir-fallback-noport', {'coldStart': {'fallback': {'service': {'name': 'fb'}}}}),
     I + 'spec.coldStart.fallback.service.port or spec.coldStart.fallback.service.portName is required'),
    (ir('ir-hdr-map-number', {'coldStart': {'placeholder': {'response': {'headers': {'Refresh': 5}}}}}),
     I + 'spec.coldStart.placeholder.response.headers.Refresh must be a string, not an integer'),
    (ir('ir-hdr-bad-name', {'coldStart': {'placeholder': {'response': {'headers': {'Bad Name': 'x'}}}}}),
     I + 'spec.coldStart.placeholder.response.headers name "Bad Name" is not a valid header name'),
    (ir('ir-timeouts-bad', {'timeouts': {'request': 'forever'}}), I + 'spec.timeouts.request "forever" ' + DUR),
    (ir('ir-static-no-rules', {'staticRoutes': [{'response': {}}]}),
     I + 'spec.staticRoutes[0].rules needs at least one rule'),
    (ir('ir-static-no-response', {'staticRoutes': [{'rules': [{}]}]}),
     I + 'spec.staticRoutes[0].response is required'),
    (ir('ir-static-mode', {'staticRoutes': [{'rules': [{}], 'response': {}, 'responseMode': 'Sometimes'}]}),
     I + 'spec.staticRoutes[0].responseMode "Sometimes" must be Always or WhenUnavailable'),
    (ir('ir-static-status', {'staticRoutes': [{'rules': [{}], 'response': {'statusCode': 'ok'}}]}),
     I + 'spec.staticRoutes[0].response.statusCode must be an integer, not a string'),
    (ir('ir-v1alpha1', api='http.keda.sh/v1alpha1'),
     I + 'apiVersion http.keda.sh/v1alpha1 is not supported (http.keda.sh/v1beta1 is)'),
]

docs, exps = [], []
for obj, msg in cases:
    md = obj.get('metadata')
    name = md.get('name') if isinstance(md, dict) else None
    if isinstance(name, str) and isinstance(md.get('namespace', 'default'), str):
        key = {'kind': obj['kind'], 'name': name}
    else:
        key = {'kind': obj['kind'], 'doc': len(docs)}
    text = msg.replace('{}', name if isinstance(name, str) else '?')
    if text.startswith(PREFIX):
        key['errorPrefix'] = text[len(PREFIX):]
    else:
        key['error'] = text
    docs.append(obj)
    exps.append(key)

names = [e['name'] for e in exps if 'name' in e]
assert len(names) == len(set(names)), 'duplicate names'
with open('invalid.yaml', 'w') as f:
    f.write('# Hand-written invalid target source objects (zerowire test data), written by\n'
            '# make_invalid.py from one table; exact messages in invalid.expect.yaml.\n')
    f.write(yaml.safe_dump_all(docs, sort_keys=False, width=100))
with open('invalid.expect.yaml', 'w') as f:
    f.write('# Exact error messages for invalid.yaml (written by make_invalid.py).\n')
    f.write(yaml.safe_dump(exps, sort_keys=False, width=200))
print(len(docs), 'cases')
