// The tab's settings in localStorage (x mode, auto-refresh, collapsed
// sections, selected runs), under "ttsmon.<key>".

export function store<T>(key: string, fallback: T): T {
  try {
    const raw = window.localStorage.getItem(`ttsmon.${key}`);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

export function save(key: string, value: unknown): void {
  try {
    window.localStorage.setItem(`ttsmon.${key}`, JSON.stringify(value));
  } catch {
    // private mode or a full quota: settings are only a convenience
  }
}
