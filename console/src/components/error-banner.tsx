import type { ReadableError } from "../errors.js";

/** A failed call: the server's message and its gRPC code, plus field reasons when the form has no place for them. */
export function ErrorBanner({ error, showFields = false }: { error: ReadableError | undefined; showFields?: boolean }) {
  if (!error) return null;
  const fields = Object.entries(error.fields);
  return (
    <div className="error" role="alert">
      <strong>{error.message}</strong> <span className="code">{error.code}</span>
      {showFields && fields.length > 0 && (
        <ul>
          {fields.map(([f, d]) => (
            <li key={f}>
              <code>{f}</code>: {d}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Reasons the server gave for one form field. */
export function FieldError({ messages }: { messages: string[] }) {
  if (messages.length === 0) return null;
  return (
    <div className="field-error" role="alert">
      {messages.join("; ")}
    </div>
  );
}
