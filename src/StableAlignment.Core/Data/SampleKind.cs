namespace StableAlignment.Core.Data;

/// <summary>The three kinds of alignment sample (spec §3).</summary>
public enum SampleKind
{
    /// <summary>A question answered directly; rated by the observers' alignment score.</summary>
    Imitation,

    /// <summary>A peer's comment on a draft; rated by that peer's rating.</summary>
    SelfCritic,

    /// <summary>A revision of a draft in the light of the feedback; rated by the observers' score of the revision.</summary>
    Realignment,
}
