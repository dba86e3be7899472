"""The default message templates, one per destination kind (``template.Renderer`` runs them).

Each alert in ``alerts`` reads as: what and where (the summary, with the stack's name),
state and for how long, the absolute start in ``[notify] timezone``, value against
threshold or band, then where to look (this alert's page, the stack in Contentstack, the
runbook) and, while it is active, how to acknowledge it. ``short`` (SMS, console,
incident summaries) stays one line: summary and value.
"""

from __future__ import annotations

DEFAULT_TITLE = (
    "{% if kind == 'ack' %}[ACK] {{ alertnames }} acknowledged by {{ ack_by }}"
    "{% elif kind == 'alert' %}[{{ status|upper }}"
    "{% if status == 'firing' %}:{{ active|length }}{% endif %}] {{ alertnames }}"
    "{% if group_desc %} ({{ group_desc }}){% endif %}{% if repeat %} (reminder){% endif %}"
    "{% else %}{{ text_title }}{% endif %}"
)

DEFAULT_MARKDOWN = """\
{% if kind == 'ack' %}
✋ **Acknowledged by {{ ack_by }}**{% if ack_comment %}: {{ ack_comment }}{% endif %}

{% endif %}
{% if text %}
{{ text }}

{% endif %}
{% for a in alerts %}
{{ a.emoji }} **{{ a.summary }}** · {{ a.STATE }} {{ a.duration_text }} · {{ a.severity }}
{% if a.started %}
> {{ a.started_word }} {{ a.started }}
{% endif %}
{% if a.value is not none %}
> value **{{ a.value }}**{% if a.threshold is not none %} (threshold {{ a.threshold }}){% endif %}\
{% if a.band %}, expected {{ a.band }}{% endif %}

{% endif %}
{% if a.description %}
> {{ a.description }}
{% endif %}
{% if a.shown_labels %}
> {% for k, v in a.shown_labels %}`{{ k }}={{ v }}` {% endfor %}

{% endif %}
{% if a.links %}
> {% for text, href in a.links %}{% if not loop.first %} · {% endif %}[{{ text }}]({{ href }})\
{% endfor %}

{% endif %}
{% if a.ack %}
> ack: `{{ a.ack }}`
{% endif %}

{% endfor %}
{% if ongoing %}
_Still active: {{ ongoing|map(attribute='summary')|join(', ') }}_
{% endif %}
"""

DEFAULT_TEXT = """\
{% if kind == 'ack' %}
Acknowledged by {{ ack_by }}{% if ack_comment %}: {{ ack_comment }}{% endif %}

{% endif %}
{% if text %}
{{ text }}

{% endif %}
{% for a in alerts %}
[{{ a.STATE }}] {{ a.summary }} ({{ a.severity }}) {{ a.duration_text }}
{% if a.started %}
  {{ a.started_word }}: {{ a.started }}
{% endif %}
{% if a.value is not none %}
  value: {{ a.value }}{% if a.threshold is not none %}  threshold: {{ a.threshold }}{% endif %}\
{% if a.band %}  expected: {{ a.band }}{% endif %}

{% endif %}
{% if a.description %}
  {{ a.description }}
{% endif %}
{% if a.shown_labels %}
  labels: {% for k, v in a.shown_labels %}{{ k }}={{ v }} {% endfor %}

{% endif %}
{% for text, href in a.links %}
  {{ text|lower }}: {{ href }}
{% endfor %}
{% if a.ack %}
  ack: {{ a.ack }}
{% endif %}
{% endfor %}
{% if ongoing %}

Still active: {{ ongoing|map(attribute='summary')|join(', ') }}
{% endif %}
"""

DEFAULT_HTML = """\
<div style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px">
{% if kind == 'ack' %}
<p><b>Acknowledged by {{ ack_by }}</b>{% if ack_comment %}: {{ ack_comment }}{% endif %}</p>
{% endif %}
{% if text %}<p>{{ text }}</p>{% endif %}
{% for a in alerts %}
<table style="border-collapse:collapse;margin:0 0 16px 0;border-left:4px solid {{ a.colour }}">
<tr><td colspan="2" style="padding:6px 10px;font-size:16px">
<b>{{ a.summary }}</b> &middot; {{ a.STATE }} {{ a.duration_text }} &middot; \
{{ a.severity }}</td></tr>
{% if a.description %}<tr><td colspan="2" style="padding:2px 10px">\
{{ a.description }}</td></tr>{% endif %}
{% if a.started %}<tr><td style="padding:2px 10px;color:#666">{{ a.started_word|capitalize }}\
</td><td style="padding:2px 10px">{{ a.started }}</td></tr>{% endif %}
{% if a.value is not none %}<tr><td style="padding:2px 10px;color:#666">Value</td>\
<td style="padding:2px 10px"><b>{{ a.value }}</b></td></tr>{% endif %}
{% if a.threshold is not none %}<tr><td style="padding:2px 10px;color:#666">Threshold</td>\
<td style="padding:2px 10px">{{ a.threshold }}</td></tr>{% endif %}
{% if a.band %}<tr><td style="padding:2px 10px;color:#666">Expected</td>\
<td style="padding:2px 10px">{{ a.band }}</td></tr>{% endif %}
{% for k, v in a.shown_labels %}<tr><td style="padding:2px 10px;color:#666">{{ k }}</td>\
<td style="padding:2px 10px">{{ v }}</td></tr>{% endfor %}
{% for text, href in a.links %}<tr><td style="padding:2px 10px;color:#666">{{ text }}</td>\
<td style="padding:2px 10px"><a href="{{ href }}">{{ href }}</a></td></tr>{% endfor %}
{% if a.ack %}<tr><td style="padding:2px 10px;color:#666">Ack</td>\
<td style="padding:2px 10px"><code>{{ a.ack }}</code></td></tr>{% endif %}
</table>
{% endfor %}
{% if ongoing %}<p>Still active: {{ ongoing|map(attribute='summary')|join(', ') }}</p>{% endif %}
<p style="color:#999;font-size:12px">Sent by Stackwatch</p>
</div>
"""

DEFAULT_SHORT = (
    "{% if kind == 'ack' %}acknowledged by {{ ack_by }}{% if ack_comment %}: {{ ack_comment }}"
    "{% endif %}{% elif text %}{{ text }}{% elif alerts %}{% set a = alerts[0] %}{{ a.summary }}"
    "{% if a.value is not none %} = {{ a.value }}{% endif %}"
    "{% if a.threshold is not none %} (threshold {{ a.threshold }}){% endif %}"
    "{% if a.band %} (expected {{ a.band }}){% endif %}"
    "{% if alerts|length > 1 %} +{{ alerts|length - 1 }} more{% endif %}{% endif %}"
)

DEFAULTS: dict[str, str] = {
    "title": DEFAULT_TITLE,
    "markdown": DEFAULT_MARKDOWN,
    "html": DEFAULT_HTML,
    "text": DEFAULT_TEXT,
    "short": DEFAULT_SHORT,
}
