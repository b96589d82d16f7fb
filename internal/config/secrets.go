package config

// Secrets returns the value of every credential in the model file (the
// deployments' keys, header values and AWS credentials, and the tenants'
// keys), for scrubbing them out of text that leaves the worker in any form
// a vendor may echo them in (see llm.Scrub).
func (m *Models) Secrets() []string {
	var out []string
	add := func(s Secret) {
		if v := s.Reveal(); v != "" {
			out = append(out, v)
		}
	}
	for _, g := range m.Groups {
		if g == nil {
			continue
		}
		for _, d := range g.Deployments {
			if d == nil {
				continue
			}
			add(d.APIKey)
			add(d.AWSAccessKeyID)
			add(d.AWSSecretAccessKey)
			add(d.AWSSessionToken)
			for _, h := range d.Headers {
				add(h)
			}
		}
	}
	for _, t := range m.Tenants {
		if t == nil {
			continue
		}
		for _, k := range t.Keys {
			add(k)
		}
	}
	return out
}

// Secrets returns the credentials among the process settings (NATS
// password and token, and the password in NATS_URL).
func (e Env) Secrets() []string {
	var out []string
	for _, s := range []Secret{e.NATSPassword, e.NATSToken} {
		if v := s.Reveal(); v != "" {
			out = append(out, v)
		}
	}
	return append(out, urlPasswords(e.NATSURL)...)
}
