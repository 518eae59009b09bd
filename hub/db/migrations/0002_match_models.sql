-- Versioned match models (hub.match.model.Model.to_dict): shipped defaults apply
-- until a trained model is stored and activated; at most one model is active.
CREATE TABLE match_models (
    version    text PRIMARY KEY,
    model      jsonb NOT NULL,
    trained_at timestamptz NOT NULL DEFAULT now(),
    active     boolean NOT NULL DEFAULT false,
    training   jsonb NOT NULL DEFAULT '{}'     -- how it was trained (hub.match_store)
);
CREATE UNIQUE INDEX match_models_one_active ON match_models ((true)) WHERE active;
